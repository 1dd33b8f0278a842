/*
 * locale.h: numbers written in the "C" locale, whatever setlocale() the
 * program made (a decimal comma would corrupt a summary line, a rendered
 * value or a message). The switch is uselocale(3): the calling thread only,
 * so it is thread-safe; the one push/pop of jobcache.
 */
#ifndef JC_LOCALE_H
#define JC_LOCALE_H

#include <locale.h>
#include <stdbool.h>

/* The "C" locale object, made once; (locale_t)0 if it could not be made
 * (glibc and musl never fail for "C"). */
locale_t jc__c_locale(void);

/* What jc__c_numbers_begin replaced. */
typedef struct jc__locale_saved {
    locale_t old;
    bool switched; /* false: the C locale could not be had; numbers follow the thread's */
} jc__locale_saved;

/* Switches the calling thread to the C locale until jc__c_numbers_end. */
jc__locale_saved jc__c_numbers_begin(void);
/* Gives the thread back the locale saved by jc__c_numbers_begin. */
void jc__c_numbers_end(jc__locale_saved saved);

/* strtod(3) in the C locale whatever the program's: "1.5" is one and a
 * half under de_DE as under C, and "1,5" stops at the comma. Every number
 * jobcache reads from text (the environment, settings) goes through it. */
double jc__strtod_c(const char *s, char **end);

#endif

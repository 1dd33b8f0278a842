/*
 * locale: the C locale for numbers, pushed and popped per thread (locale.h).
 */
#include <pthread.h>
#include <stdlib.h>

#include "util/locale.h"

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale_obj;

static void c_locale_make(void)
{
    c_locale_obj = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

locale_t jc__c_locale(void)
{
    pthread_once(&c_locale_once, c_locale_make);
    return c_locale_obj;
}

jc__locale_saved jc__c_numbers_begin(void)
{
    locale_t c = jc__c_locale();
    locale_t old = c ? uselocale(c) : (locale_t)0;
    return (jc__locale_saved){.old = old, .switched = old != (locale_t)0};
}

void jc__c_numbers_end(jc__locale_saved saved)
{
    if (saved.switched)
        uselocale(saved.old);
}

double jc__strtod_c(const char *s, char **end)
{
    locale_t c = jc__c_locale();
    if (c)
        return strtod_l(s, end, c);
    jc__locale_saved loc = jc__c_numbers_begin();
    double d = strtod(s, end);
    jc__c_numbers_end(loc);
    return d;
}

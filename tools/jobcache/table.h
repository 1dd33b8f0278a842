/*
 * Tables of human-readable output (table.c): rows collected, then printed
 * in columns sized to their contents and fitted to the terminal's width
 * (term_columns): columns marked droppable go first, from the right, then
 * the widest shrinkable columns are narrowed and their cells cut with
 * "...". Every cell is escaped (text_escape) as it is added.
 *
 * For output that must stream (ls), see ls.c: a table reads all its rows
 * before it prints.
 */
#ifndef JC_TOOL_TABLE_H
#define JC_TOOL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum { TABLE_MAX_COLS = 16 };

typedef struct table {
    size_t ncols;
    const char *align; /* one 'l' or 'r' per column */
    /* NULL, or one per column: 'k' keep, 's' may be narrowed, 'd' may be
     * left out when the table does not fit (the first row, the header, too). */
    const char *fit;
    char **cells;
    size_t nrows, cap;
} table;

/* Adds a row of t->ncols strings, copied with text_escape; false when out
 * of memory. */
bool table_add(table *t, const char *const *cells);
/* Prints the rows fitted to width columns (0: no limit). */
void table_print_width(const table *t, FILE *f, size_t width);
/* Prints the rows fitted to the terminal (term_columns). */
void table_print(const table *t, FILE *f);
void table_free(table *t);

#endif

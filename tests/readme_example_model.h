/*
 * What the README's first example leaves to its reader: the model it runs
 * and the grid it sweeps. tests/CMakeLists.txt compiles the example as the
 * README has it, after this file (readme_example.sh runs it).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

/* A loss that diverges (NaN) for alpha above 1, as a model can. */
static double run_model(double alpha, long seed, long steps)
{
    return alpha > 1 ? NAN : alpha * (double)steps + (double)seed;
}

static const double alpha[] = {0.1, 0.5, 2.0};
static const int n_alpha = 3;

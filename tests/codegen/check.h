/* Shared by the codegen drivers: compare with a tolerance, count failures. */
#include <math.h>
#include <stdio.h>

static int failures;

static void near(const char *what, int i, double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol * (1 + fabs(want)))) {
        if (failures++ < 20)
            fprintf(stderr, "%s[%d]: got %.9g, want %.9g\n", what, i, got, want);
    }
}

static void expect(const char *what, int cond)
{
    if (!cond) {
        failures++;
        fprintf(stderr, "failed: %s\n", what);
    }
}

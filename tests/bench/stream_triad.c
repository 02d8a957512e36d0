/* The STREAM triad a = b + q*c in C with OpenMP, the baseline for the course's Rust triad.
 * Usage: OMP_NUM_THREADS=N stream_triad LEN RUNS; prints the number of threads its parallel
 * loops ran on and the best bandwidth in bytes/s, counted as STREAM does (24 bytes per
 * element). Built by tests/bench/module1.py with gcc -O3 -fopenmp. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: stream_triad LEN RUNS\n");
        return 2;
    }
    long n = atol(argv[1]);
    int runs = atoi(argv[2]);
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
#pragma omp parallel for
    for (long i = 0; i < n; i++) { /* first touch by the thread that will use the page */
        a[i] = 1.0;
        b[i] = 2.0;
        c[i] = 0.0;
    }
    int threads = 0;
#pragma omp parallel
#pragma omp single
    threads = omp_get_num_threads();
    double q = 3.0, best = 1e30;
    for (int r = 0; r < runs; r++) {
        double t = omp_get_wtime();
#pragma omp parallel for
        for (long i = 0; i < n; i++) a[i] = b[i] + q * c[i];
        t = omp_get_wtime() - t;
        if (t < best) best = t;
    }
    printf("threads %d\n", threads);
    printf("triad_bytes_per_second %.6e\n", 24.0 * n / best);
    fprintf(stderr, "check %f\n", a[n / 2]); /* keeps the loop alive */
    free(a);
    free(b);
    free(c);
    return 0;
}

// Read-bandwidth probe for scripts/bench-cpu.sh: the ceiling a decode step can reach, since
// decoding one token streams every weight byte once from DRAM.
//
//   gcc -O2 -march=native -fopenmp -o membw membw.c
//   ./membw [--threads N] [--size-mib 1024] [--passes 10]
//
// Each of N OpenMP threads first-touches, then repeatedly sums, its own contiguous slice of one
// buffer much larger than the last-level cache; prints the best pass as one JSON line
// (GB = 1e9 bytes, the unit tokens/s limits are computed in).
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint64_t Vec __attribute__((vector_size(32)));  // one AVX2 register

static double nowSeconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static long parsePositive(const char *flag, const char *value) {
    char *end = NULL;
    long n = value ? strtol(value, &end, 10) : 0;
    if (!value || *end != '\0' || n < 1) {
        fprintf(stderr, "membw: %s: expected a positive integer, found %s\n", flag, value ? value : "nothing");
        exit(2);
    }
    return n;
}

int main(int argc, char **argv) {
    long numThreads = omp_get_num_procs(), sizeMib = 1024, numPasses = 10;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads")) numThreads = parsePositive(argv[i], argv[i + 1]), i++;
        else if (!strcmp(argv[i], "--size-mib")) sizeMib = parsePositive(argv[i], argv[i + 1]), i++;
        else if (!strcmp(argv[i], "--passes")) numPasses = parsePositive(argv[i], argv[i + 1]), i++;
        else {
            fprintf(stderr, "usage: membw [--threads N] [--size-mib 1024] [--passes 10]\n");
            return 2;
        }
    }
    omp_set_dynamic(0);
    omp_set_num_threads((int) numThreads);

    size_t sizeBytes = (size_t) sizeMib << 20;
    size_t numVecs = sizeBytes / sizeof(Vec);
    Vec *buffer = aligned_alloc(4096, numVecs * sizeof(Vec));
    if (!buffer) {
        fprintf(stderr, "membw: cannot allocate %ld MiB\n", sizeMib);
        return 1;
    }
    // First touch from the thread that will read the slice (NUMA placement, no lazy faults later).
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < numVecs; i++) buffer[i] = (Vec) {i, i + 1, i + 2, i + 3};

    double bestSeconds = 1e30;
    uint64_t checksum = 0;
    for (long pass = 0; pass < numPasses; pass++) {
        uint64_t passSum = 0;
        double start = nowSeconds();
#pragma omp parallel reduction(+ : passSum)
        {
            // Four independent accumulators keep several loads in flight per thread.
            Vec acc0 = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
#pragma omp for schedule(static)
            for (size_t i = 0; i < numVecs; i += 4) {
                acc0 += buffer[i];
                acc1 += buffer[i + 1];
                acc2 += buffer[i + 2];
                acc3 += buffer[i + 3];
            }
            Vec acc = acc0 + acc1 + acc2 + acc3;
            passSum += acc[0] + acc[1] + acc[2] + acc[3];
        }
        double seconds = nowSeconds() - start;
        if (seconds < bestSeconds) bestSeconds = seconds;
        checksum += passSum;  // used below so the reads cannot be optimized away
    }
    printf("{\"threads\":%ld,\"buffer_bytes\":%zu,\"passes\":%ld,\"best_seconds\":%.6f,"
           "\"read_gb_per_s\":%.3f,\"checksum\":%llu}\n",
           numThreads, sizeBytes, numPasses, bestSeconds, sizeBytes / bestSeconds / 1e9,
           (unsigned long long) (checksum & 0xffff));
    free(buffer);
    return 0;
}

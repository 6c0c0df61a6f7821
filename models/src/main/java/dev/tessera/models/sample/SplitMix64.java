package dev.tessera.models.sample;

/**
 * SplitMix64 (Steele, Lea, Flood 2014; Vigna's splitmix64.c): a counter-based generator written out here rather than
 * taken from java.util, whose algorithms the Java spec does not pin. The same seed therefore draws the same numbers
 * on every JVM and machine.
 */
final class SplitMix64 {

    private static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

    private long state;

    SplitMix64(long seed) {
        this.state = seed;
    }

    long nextLong() {
        long z = (state += GOLDEN_GAMMA);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, 1) with 53 random bits. */
    double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }
}

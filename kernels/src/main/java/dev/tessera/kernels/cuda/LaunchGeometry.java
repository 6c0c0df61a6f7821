package dev.tessera.kernels.cuda;

import dev.tessera.kernels.TensorType;

/**
 * Grid and block sizes, and the per-format constants they depend on, in one place so the host-side test can check
 * them without a GPU. The numbers mirror the kernels: MATVEC_ROWS in matvec.cuh, the Fmt* structs in common.cuh,
 * DECODE_WARPS / PREFILL_QUERIES in the attention kernels, the Staging struct in common.cuh.
 */
final class LaunchGeometry {
    static final int WARP = 32;
    static final int MATVEC_ROWS = 4;
    static final int MATVEC_THREADS = MATVEC_ROWS * WARP;
    /** Token tiers with a compiled matvec kernel; more tokens than the last go through dequantize + cuBLAS GEMM. */
    static final int[] MATVEC_TIERS = {1, 2, 4, 8, 16};
    static final int MAX_MATVEC_TOKENS = 16;
    static final int ELEMENTWISE_THREADS = 256;
    static final int DECODE_THREADS = 8 * WARP;
    static final int PREFILL_QUERIES = 8;
    static final int PREFILL_THREADS = PREFILL_QUERIES * WARP;
    static final int MAX_HEAD_DIM = 256;
    static final int SAMPLE_THREADS = 1024;
    static final int SAMPLE_MAX_K = 256;
    /** Tokens per KV block (KV_BLOCK in common.cuh). */
    static final int KV_BLOCK = 16;
    /** Bytes per token in the staging buffer: int64 cache base, int64 block table, int32 blocks, position, token. */
    static final int STAGING_BYTES_PER_TOKEN = 8 + 8 + 4 + 4 + 4;

    private LaunchGeometry() {}

    /** The kernel-name suffix of a weight format, or null when the CUDA kernels do not read it. */
    static String formatSuffix(TensorType type) {
        return switch (type) {
            case F32 -> "f32";
            case F16 -> "f16";
            case BF16 -> "bf16";
            case Q8_0 -> "q8_0";
            case Q4_0 -> "q4_0";
            case Q4_K -> "q4_k";
            case Q6_K -> "q6_k";
            default -> null;
        };
    }

    /** Values per "block" of the kernels' unit walk: GGUF block size, or 4 for the float formats (one vector load). */
    static int kernelBlock(TensorType type) {
        return type.blockSize == 1 ? 4 : type.blockSize;
    }

    /** Threads (units) per kernel block of values: see UNITS_PER_BLOCK of each Fmt struct. */
    static int unitsPerBlock(TensorType type) {
        return switch (type) {
            case F32, F16, BF16 -> 1;
            case Q8_0, Q4_0 -> 4;
            case Q4_K -> 8;
            case Q6_K -> 16;
            default -> throw new IllegalArgumentException("no CUDA kernels for " + type);
        };
    }

    /** Units one row of {@code cols} values is walked in. cols must be a multiple of {@link #kernelBlock}. */
    static long unitsPerRow(TensorType type, int cols) {
        return (long) cols / kernelBlock(type) * unitsPerBlock(type);
    }

    /** The smallest tier holding numTokens (1..16). */
    static int matvecTier(int numTokens) {
        for (int tier : MATVEC_TIERS) if (numTokens <= tier) return tier;
        throw new IllegalArgumentException(numTokens + " tokens exceed the largest matvec tier " + MAX_MATVEC_TOKENS);
    }

    static int tierIndex(int tier) {
        return Integer.numberOfTrailingZeros(tier);
    }

    static int matvecBlocks(int rows) {
        return ceilDiv(rows, MATVEC_ROWS);
    }

    /** Blocks of a matvec whose rows are each shared by {@code split} warps (MATVEC_ROWS / split rows per block). */
    static int matvecBlocks(int rows, int split) {
        return ceilDiv(rows, MATVEC_ROWS / split);
    }

    /**
     * Warps per weight row: decode-sized matvecs over long rows (8192 columns, the FFN down projection of a 2048-wide
     * model) split them so each warp has one round of loads in flight instead of several in a row; 1, 2 or 4.
     */
    static int matvecSplit(int cols, int numTokens) {
        if (numTokens > 4) return 1;
        return Math.max(MIN_MATVEC_SPLIT, cols >= 8192 ? 4 : cols >= 4096 ? 2 : 1);
    }

    /** A floor on {@link #matvecSplit} for tuning runs on a device ({@code -Dtessera.cuda.matvecSplitMin=2}); 1, 2 or 4. */
    private static final int MIN_MATVEC_SPLIT = tuning("tessera.cuda.matvecSplitMin", 1, 1, 4);

    /** An integer system property for device tuning runs, ignored (with the default) when outside [min, max] or not a power of two. */
    static int tuning(String name, int fallback, int min, int max) {
        int v = Integer.getInteger(name, fallback);
        return v >= min && v <= max && Integer.bitCount(v) == 1 ? v : fallback;
    }

    static int elementwiseBlocks(long numElements) {
        return Math.toIntExact(ceilDiv(numElements, ELEMENTWISE_THREADS));
    }

    /** Threads for a row-per-block kernel with {@code work} items: a multiple of 32, at most max. */
    static int rowThreads(int work, int max) {
        return Math.min(max, Math.max(WARP, ceilDiv(work, WARP) * WARP));
    }

    static int prefillBlocksY(int numTokens) {
        return ceilDiv(numTokens, PREFILL_QUERIES);
    }

    static int numKvBlocks(int capacity) {
        return ceilDiv(capacity, KV_BLOCK);
    }

    /** Byte offsets of the staging fields for room for maxTokens tokens (see Staging in common.cuh). */
    static long cacheBaseOffset(int maxTokens, int t) { return 8L * t; }
    static long blockTableOffset(int maxTokens, int t) { return 8L * maxTokens + 8L * t; }
    static long numBlocksOffset(int maxTokens, int t) { return 16L * maxTokens + 4L * t; }
    static long positionOffset(int maxTokens, int t) { return 20L * maxTokens + 4L * t; }
    static long tokenOffset(int maxTokens, int t) { return 24L * maxTokens + 4L * t; }

    static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }
}

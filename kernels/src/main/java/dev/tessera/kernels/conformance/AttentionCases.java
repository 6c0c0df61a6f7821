package dev.tessera.kernels.conformance;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.RopeTable;

import java.util.List;
import java.util.SplittableRandom;

import static dev.tessera.kernels.conformance.CaseData.*;

/**
 * attention over private caches and over paged F32 and F16 stores: sequence A prefills 20 tokens (one sequence: the
 * tiled prefill kernel), then one batch holds A's next token with B's first 5 (the mixed batch), then A decodes alone.
 * Head shapes cover GQA, a head dimension below a warp (stories260K) and no GQA. With rope, q and k are rotated just
 * before attention, the pattern the CUDA backend fuses into its KV store. Paged sequences get blocks out of order and
 * interleaved with each other.
 */
final class AttentionCases {
    private AttentionCases() {}

    /** {numHeads, numKvHeads, headDim}. */
    private static final int[][] SHAPES = {{8, 2, 64}, {8, 4, 8}, {4, 4, 128}};

    static void add(List<ConformanceCase> cases, boolean quick) {
        long seed = 300;
        for (int[] shape : SHAPES) {
            if (quick && shape[2] == 128) continue;
            long s = seed++;
            cases.add(new ConformanceCase("attention private " + label(shape), "attention", null, 1e-3,
                    b -> run(b, s, shape[0], shape[1], shape[2], false, null)));
        }
        int[] gqa = SHAPES[0];
        long s = seed++;
        cases.add(new ConformanceCase("rope + attention private " + label(gqa) + " (fused KV store)", "attention", null, 1e-3,
                b -> run(b, s, gqa[0], gqa[1], gqa[2], true, null)));
        for (KvCacheType type : KvCacheType.values()) {
            for (boolean rope : new boolean[] {false, true}) {
                if (quick && !rope) continue;
                long s2 = seed++;
                cases.add(new ConformanceCase((rope ? "rope + " : "") + "attention paged " + type + " " + label(gqa), "attention paged", null, 1e-3,
                        b -> run(b, s2, gqa[0], gqa[1], gqa[2], rope, type)));
            }
        }
    }

    private static String label(int[] shape) {
        return shape[0] + "/" + shape[1] + " heads x" + shape[2];
    }

    private static float[] run(Backend b, long seed, int numHeads, int numKvHeads, int headDim, boolean rope, KvCacheType pagedType) {
        SplittableRandom random = new SplittableRandom(seed);
        int numLayers = 2, qDim = numHeads * headDim, kvDim = numKvHeads * headDim;
        RopeTable table = RopeTable.of(headDim, 10000, null, 1, false);
        KvBlockStore store = pagedType == null ? null : b.allocateKvBlocks(numLayers, numKvHeads, headDim, 16, 6, pagedType);
        try (KvCache a = store == null ? b.allocateKvCache(numLayers, numKvHeads, headDim, 64) : paged(store, new int[] {4, 1}, 2);
             KvCache c = store == null ? b.allocateKvCache(numLayers, numKvHeads, headDim, 64) : paged(store, new int[] {3}, 1)) {
            AttentionBatch[] steps = {
                    AttentionBatch.single(a, 0, 20),
                    new AttentionBatch(6, new int[] {20, 0, 1, 2, 3, 4}, new KvCache[] {a, c, c, c, c, c}),
                    AttentionBatch.single(a, 21, 1)};
            float[][] outs = new float[steps.length * numLayers][];
            for (int step = 0; step < steps.length; step++) {
                AttentionBatch batch = steps[step];
                int n = batch.numTokens();
                for (int layer = 0; layer < numLayers; layer++) {
                    Activations q = upload(b, gaussian(random, n * qDim, 1f), n, qDim), k = upload(b, gaussian(random, n * kvDim, 1f), n, kvDim),
                            v = upload(b, gaussian(random, n * kvDim, 1f), n, kvDim), out = b.allocate(n, qDim);
                    if (rope) {
                        b.rope(q, n, numHeads, headDim, batch.positions(), table);
                        b.rope(k, n, numKvHeads, headDim, batch.positions(), table);
                    }
                    b.attention(layer, q, k, v, batch, numHeads, numKvHeads, headDim, out);
                    outs[step * numLayers + layer] = download(b, out, n);
                }
            }
            return concat(outs);
        } finally {
            if (store != null) store.close();
        }
    }
}

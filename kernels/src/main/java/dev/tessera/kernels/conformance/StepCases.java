package dev.tessera.kernels.conformance;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.RopeTable;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.Weight;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;

import static dev.tessera.kernels.conformance.CaseData.*;

/**
 * Recorded steps ({@code beginStep} with a key ... {@code endStep}): six decode steps of one small layer under the
 * same key, so a recording backend captures the first and replays it five times while tokens, positions and the
 * cache's contents change; and argmax on the device, whose ids are compared exactly.
 */
final class StepCases {
    private StepCases() {}

    static void add(List<ConformanceCase> cases, boolean quick) {
        cases.add(new ConformanceCase("recorded decode steps (embed q8_0, matmul f16 + q6_k, rope, add, attention) x6", "beginStep/endStep",
                TensorType.Q6_K, 1e-3, b -> replayedSteps(b, 400)));
        cases.add(new ConformanceCase("argmax 3 rows x 5000 (ties to the lowest index)", "argmax", null, 0, b -> argmax(b, 401)));
    }

    private static float[] replayedSteps(Backend b, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        Arena arena = Arena.ofAuto();
        int vocab = 64, dim = 128, numHeads = 4, numKvHeads = 2, headDim = 32, kvDim = numKvHeads * headDim, numSteps = 6;
        Weight emb = b.weight("token_embd", TensorType.Q8_0, tensor(arena, random, TensorType.Q8_0, vocab, dim), vocab, dim);
        Weight wq = b.weight("wq", TensorType.F16, tensor(arena, random, TensorType.F16, dim, dim), dim, dim);
        Weight wk = b.weight("wk", TensorType.Q6_K, tensor(arena, random, TensorType.Q6_K, kvDim, 2 * dim), kvDim, 2 * dim);
        RopeTable rope = RopeTable.of(headDim, 10000, null, 1, false);
        Activations x = b.allocate(1, dim), q = b.allocate(1, dim), kv = b.allocate(1, kvDim), out = b.allocate(1, dim);
        Activations x2 = upload(b, gaussian(random, 2 * dim, 1f), 1, 2 * dim);
        float[][] outs = new float[numSteps][];
        try (KvCache cache = b.allocateKvCache(1, numKvHeads, headDim, 64)) {
            Object key = "conformance decode step";
            for (int pos = 0; pos < numSteps; pos++) {
                int[] token = {random.nextInt(vocab)};
                b.beginStep(key, 1);
                b.embed(emb, token, 1, x);
                b.matmul(wq, x, 1, q);
                b.rope(q, 1, numHeads, headDim, new int[] {pos}, rope);
                b.add(q, x, 1);
                // K = V = rope(Wk · x2) at this position: what the cache holds differs at every step.
                b.matmul(wk, x2, 1, kv);
                b.rope(kv, 1, numKvHeads, headDim, new int[] {pos}, rope);
                b.attention(0, q, kv, kv, AttentionBatch.single(cache, pos, 1), numHeads, numKvHeads, headDim, out);
                b.endStep();
                outs[pos] = download(b, out, 1);
            }
        }
        return concat(outs);
    }

    private static float[] argmax(Backend b, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int rows = 3, vocab = 5000;
        float[] logits = gaussian(random, rows * vocab, 2f);
        logits[vocab + 17] = 50f;
        logits[vocab + 4000] = 50f;
        Activations x = upload(b, logits, rows, vocab);
        int[] ids = new int[rows];
        b.argmax(x, rows, ids);
        float[] out = new float[rows];
        for (int r = 0; r < rows; r++) out[r] = ids[r];
        return out;
    }
}

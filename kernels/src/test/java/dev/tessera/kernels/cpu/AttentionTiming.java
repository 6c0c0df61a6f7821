package dev.tessera.kernels.cpu;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.KvBlockStore;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.KvCacheType;
import dev.tessera.kernels.PagedKvCache;

import java.util.Random;

/**
 * One-token decode attention as a 1B Llama runs it (32 query heads over 8 KV heads of 64, a paged F32 cache), timed
 * per call. Not a test: {@code ... dev.tessera.kernels.cpu.AttentionTiming THREADS CONTEXT SECONDS [F16]}.
 */
public final class AttentionTiming {
    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]), context = Integer.parseInt(args[1]);
        double seconds = Double.parseDouble(args[2]);
        KvCacheType type = args.length > 3 ? KvCacheType.valueOf(args[3]) : KvCacheType.F32;
        int layers = 16, heads = 32, kvHeads = 8, headDim = 64, block = 16, blocks = context / block + 2;
        Random random = new Random(5);
        try (CpuBackend backend = new CpuBackend(threads);
             KvBlockStore store = backend.allocateKvBlocks(layers, kvHeads, headDim, block, blocks, type)) {
            PagedKvCache cache = new PagedKvCache(store);
            int[] table = new int[blocks];
            for (int i = 0; i < blocks; i++) table[i] = i;  // consecutive, as a fresh pool hands them out
            cache.setBlocks(table, blocks);
            Activations q = backend.allocate(1, heads * headDim), k = backend.allocate(1, kvHeads * headDim),
                    v = backend.allocate(1, kvHeads * headDim), out = backend.allocate(1, heads * headDim);
            float[] x = new float[heads * headDim];
            for (int i = 0; i < x.length; i++) x[i] = (float) random.nextGaussian();
            backend.upload(x, q, 1);
            backend.upload(x, k, 1);
            backend.upload(x, v, 1);
            AttentionBatch[] batches = new AttentionBatch[context];
            for (int p = 0; p < context; p++) batches[p] = new AttentionBatch(1, new int[]{p}, new KvCache[]{cache});
            for (int p = 0; p < context; p++) for (int l = 0; l < layers; l++) backend.attention(l, q, k, v, batches[p], heads, kvHeads, headDim, out);
            AttentionBatch last = batches[context - 1];
            long calls = 0, t0 = System.nanoTime(), deadline = t0 + (long) (seconds * 1e9);
            while (System.nanoTime() < deadline)
                for (int l = 0; l < layers; l++, calls++) backend.attention(l, q, k, v, last, heads, kvHeads, headDim, out);
            System.out.printf("threads=%d context=%d %s: %.2f us per call%n", threads, context, type, (System.nanoTime() - t0) / 1e3 / calls);
        }
    }
}

package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.kernels.KvCache;
import dev.tessera.kernels.Weight;
import dev.tessera.kernels.collective.AllReduce;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * One device's share of every layer, the same on the master and on a worker: the same math as LlamaModel's layer
 * loop, but attention runs on this device's heads (against its own KV cache) and the FFN on its columns, and each
 * half ends with an allreduce that sums the devices' partial attn_output / ffn_down projections into the residual.
 * The hidden state {@code x} is identical on every device: each allreduce hands all ranks the same bits.
 */
public final class DeviceShard implements AutoCloseable {
    /** A resident or windowed set of weights; empty when this device has no part of that half of the layer. */
    record Block(Weight[] weights) {}

    private final ModelConfig config;
    private final ShardPlan plan;
    private final int rank;
    private final Backend backend;
    private final WeightWindow window;
    private final TpStats stats;
    private final FileChannel channel;
    private final Arena residentArena = Arena.ofShared();
    private final Weight[] attentionNorm, ffnNorm, bq, bk, bv;
    private final int numHeads, numKvHeads, ffnColumns, maxBatchTokens;
    private final Activations x, xb, q, k, v, att, out, hb, hb2;
    private final float[] partial;
    private KvCache cache;

    /**
     * @param file the source model (master, slices cut on load) or this device's shard file (worker, whole tensors)
     * @param window 0 = every block resident, else at most this many blocks (≥ 2)
     */
    public DeviceShard(ModelConfig config, ShardPlan plan, int rank, GgufFile file, boolean shardFile, Backend backend,
                       int window, int maxBatchTokens) {
        this.config = config;
        this.plan = plan;
        this.rank = rank;
        this.backend = backend;
        this.maxBatchTokens = maxBatchTokens;
        ShardLayout layout = new ShardLayout(config, plan, rank);
        this.stats = new TpStats(layout.numBlocks());
        numHeads = plan.numHeads(rank);
        numKvHeads = plan.numKvHeads(rank);
        ffnColumns = plan.ffnColumns(rank);
        try {
            channel = FileChannel.open(file.path(), StandardOpenOption.READ);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open " + file.path() + ": " + e.getMessage(), e);
        }
        int layers = config.numLayers();
        attentionNorm = new Weight[layers];
        ffnNorm = new Weight[layers];
        bq = new Weight[layers];
        bk = new Weight[layers];
        bv = new Weight[layers];
        for (ShardLayout.Slice s : layout.resident()) {
            Weight w = load(file, shardFile, s, residentArena);
            int l = Integer.parseInt(s.name().substring(4, s.name().indexOf('.', 4)));
            String kind = s.name().substring(s.name().indexOf('.', 4) + 1);
            switch (kind) {
                case "attn_norm.weight" -> attentionNorm[l] = w;
                case "ffn_norm.weight" -> ffnNorm[l] = w;
                case "attn_q.bias" -> bq[l] = w;
                case "attn_k.bias" -> bk[l] = w;
                case "attn_v.bias" -> bv[l] = w;
                default -> throw new IllegalStateException("unexpected resident tensor " + s.name());
            }
        }
        this.window = new WeightWindow((index, arena) -> {
            List<ShardLayout.Slice> slices = layout.block(index);
            Weight[] ws = new Weight[slices.size()];
            for (int i = 0; i < ws.length; i++) ws[i] = load(file, shardFile, slices.get(i), arena);
            return new Block(ws);
        }, layout.numBlocks(), window, stats);
        int hd = config.headDim();
        x = backend.allocate(maxBatchTokens, config.dim());
        xb = backend.allocate(maxBatchTokens, config.dim());
        out = backend.allocate(maxBatchTokens, config.dim());
        q = numHeads > 0 ? backend.allocate(maxBatchTokens, numHeads * hd) : null;
        att = numHeads > 0 ? backend.allocate(maxBatchTokens, numHeads * hd) : null;
        k = numHeads > 0 ? backend.allocate(maxBatchTokens, numKvHeads * hd) : null;
        v = numHeads > 0 ? backend.allocate(maxBatchTokens, numKvHeads * hd) : null;
        hb = ffnColumns > 0 ? backend.allocate(maxBatchTokens, ffnColumns) : null;
        hb2 = ffnColumns > 0 ? backend.allocate(maxBatchTokens, ffnColumns) : null;
        partial = new float[maxBatchTokens * config.dim()];
    }

    /** Reads one slice into arena memory and wraps it as a backend weight. */
    private Weight load(GgufFile file, boolean shardFile, ShardLayout.Slice s, Arena arena) {
        GgufTensorInfo t = file.tensor(s.name());
        if (t == null) throw file.fail("missing tensor " + s.name());
        ShardLayout.Slice from = s;
        if (shardFile) {
            if (t.cols() != s.cols() || t.rows() != s.rows())
                throw file.fail("tensor " + s.name() + " is [" + t.rows() + "x" + t.cols() + "], the plan expects [" + s.rows() + "x" + s.cols() + "]");
            from = new ShardLayout.Slice(s.name(), 0, s.rows(), 0, s.cols(), s.vector());
        }
        MemorySegment dst = arena.allocate(ShardLayout.sizeBytes(t, from), 64);
        ShardLayout.read(channel, file, from, dst);
        return backend.weight(s.name(), t.type(), dst, s.rows(), s.cols());
    }

    public TpStats stats() { return stats; }

    public WeightWindow window() { return window; }

    public int rank() { return rank; }

    public ShardPlan plan() { return plan; }

    /** Starts a new sequence: this device's KV cache for its heads, {@code capacity} positions. */
    public void beginSequence(int capacity) {
        endSequence();
        if (numHeads > 0) cache = backend.allocateKvCache(config.numLayers(), numKvHeads, config.headDim(), capacity);
    }

    public void endSequence() {
        if (cache != null) cache.close();
        cache = null;
    }

    /**
     * Runs every layer over n token rows at positions start..start+n-1, in lockstep with the other devices.
     *
     * @param hidden [n][dim] hidden states after the embedding, identical on every device; updated in place
     */
    public void layers(float[] hidden, int n, int start, AllReduce allReduce) {
        if (n < 1 || n > maxBatchTokens) throw new IllegalArgumentException("batch of " + n + " tokens, limit " + maxBatchTokens);
        if (numHeads > 0 && cache == null) throw new IllegalStateException("no sequence begun");
        ModelConfig c = config;
        int width = n * c.dim();
        AttentionBatch batch = numHeads > 0 ? AttentionBatch.single(cache, start, n) : null;
        for (int l = 0; l < c.numLayers(); l++) {
            int block = 2 * l;
            Block w = window.acquire(block);
            long t0 = System.nanoTime();
            if (numHeads > 0) {
                backend.upload(hidden, x, n);
                backend.rmsNorm(x, attentionNorm[l], c.rmsNormEps(), n, xb);
                backend.matmul(w.weights()[0], xb, n, q);
                backend.matmul(w.weights()[1], xb, n, k);
                backend.matmul(w.weights()[2], xb, n, v);
                if (bq[l] != null) {
                    backend.addBias(q, bq[l], n);
                    backend.addBias(k, bk[l], n);
                    backend.addBias(v, bv[l], n);
                }
                backend.rope(q, n, numHeads, c.headDim(), batch.positions(), c.rope());
                backend.rope(k, n, numKvHeads, c.headDim(), batch.positions(), c.rope());
                backend.attention(l, q, k, v, batch, numHeads, numKvHeads, c.headDim(), att);
                backend.matmul(w.weights()[3], att, n, out);
                backend.download(out, partial, n);
            } else {
                java.util.Arrays.fill(partial, 0, width, 0f);
            }
            stats.compute(block, System.nanoTime() - t0);
            window.release(block);
            reduceInto(hidden, width, block, allReduce);

            block = 2 * l + 1;
            w = window.acquire(block);
            t0 = System.nanoTime();
            if (ffnColumns > 0) {
                backend.upload(hidden, x, n);
                backend.rmsNorm(x, ffnNorm[l], c.rmsNormEps(), n, xb);
                backend.matmul(w.weights()[0], xb, n, hb);
                backend.matmul(w.weights()[1], xb, n, hb2);
                backend.swiglu(hb, hb2, n);
                backend.matmul(w.weights()[2], hb, n, out);
                backend.download(out, partial, n);
            } else {
                java.util.Arrays.fill(partial, 0, width, 0f);
            }
            stats.compute(block, System.nanoTime() - t0);
            window.release(block);
            reduceInto(hidden, width, block, allReduce);
        }
    }

    /** Sums the partial projections over devices and adds them to the residual, as LlamaModel's backend.add does. */
    private void reduceInto(float[] hidden, int width, int block, AllReduce allReduce) {
        long t0 = System.nanoTime();
        allReduce.sum(partial, 0, width);
        stats.allReduce(block, System.nanoTime() - t0);
        for (int i = 0; i < width; i++) hidden[i] += partial[i];
    }

    @Override
    public void close() {
        endSequence();
        window.close();
        residentArena.close();
        try {
            channel.close();
        } catch (IOException ignored) {
            // Read-only channel: nothing to flush, and the process keeps going.
        }
    }
}

package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.Weight;
import dev.tessera.models.arch.LayerSource;
import dev.tessera.models.arch.LlamaWeights;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.arch.RankShape;
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
 * One tensor-parallel rank's weights as a {@link LayerSource}: its heads of Q/K/V/O and its FFN columns, cut from the
 * source model (on the master) or read whole from its shard file (on a worker). Norms and biases stay resident; the
 * two halves of every layer are blocks of a {@link WeightWindow}, so with a window only W blocks are in memory at once
 * and the next ones stream in from disk while the graph computes (TPI-LLM's sliding window).
 */
public final class ShardWeights implements LayerSource, AutoCloseable {
    private final ModelConfig config;
    private final RankShape shape;
    private final int rank;
    private final Backend backend;
    private final ShardLayout layout;
    private final GgufFile file;
    private final boolean shardFile;
    private final int windowSize;
    private WeightWindow window;
    private final TpStats stats;
    private final FileChannel channel;
    private final Arena residentArena = Arena.ofShared();
    private final Weight[] attentionNorm, ffnNorm, bq, bk, bv, qNorm, kNorm;
    private final long[] acquiredNanos;

    /** A resident or windowed set of weights; empty when this rank has no part of that half of the layer. */
    record Block(Weight[] weights) {}

    /**
     * @param file      the source model (slices cut on load) or this rank's shard file (whole tensors)
     * @param shardFile whether {@code file} is a shard file
     * @param window    0 = every block resident, else at most this many blocks (≥ 2)
     */
    public ShardWeights(ModelConfig config, ShardPlan plan, int rank, GgufFile file, boolean shardFile, Backend backend, int window) {
        this.config = config;
        this.rank = rank;
        this.backend = backend;
        this.shape = new RankShape(plan.numHeads(rank), plan.numKvHeads(rank), plan.ffnColumns(rank));
        ShardLayout layout = new ShardLayout(config, plan, rank);
        this.layout = layout;
        this.file = file;
        this.shardFile = shardFile;
        this.windowSize = window;
        this.stats = new TpStats(layout.numBlocks());
        this.acquiredNanos = new long[layout.numBlocks()];
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
        qNorm = new Weight[layers];
        kNorm = new Weight[layers];
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
                case "attn_q_norm.weight" -> qNorm[l] = w;
                case "attn_k_norm.weight" -> kNorm[l] = w;
                default -> throw new IllegalStateException("unexpected resident tensor " + s.name());
            }
        }
        this.window = newWindow();
    }

    /** The sliding window over this rank's blocks, its loader starting at block 0. */
    private WeightWindow newWindow() {
        return new WeightWindow((index, arena) -> {
            List<ShardLayout.Slice> slices = layout.block(index);
            Weight[] ws = new Weight[slices.size()];
            for (int i = 0; i < ws.length; i++) ws[i] = load(file, shardFile, slices.get(i), arena);
            return new Block(ws);
        }, layout.numBlocks(), windowSize, stats);
    }

    /**
     * A step failed part-way through the layers: the window's cyclic order is somewhere in the middle, so it starts
     * over at block 0 (with a window of 0 every block stays resident and nothing changes).
     */
    @Override
    public void reset() {
        if (windowSize == 0) return;
        window.close();
        window = newWindow();
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

    public RankShape shape() { return shape; }

    public int rank() { return rank; }

    public TpStats stats() { return stats; }

    public WeightWindow window() { return window; }

    @Override
    public LlamaWeights.Layer acquire(int layer, Half half) {
        int block = 2 * layer + half.ordinal();
        Block b = window.acquire(block);
        acquiredNanos[block] = System.nanoTime();
        Weight[] w = b.weights();
        if (half == Half.ATTENTION) {
            if (w.length == 0) return null;
            return new LlamaWeights.Layer(attentionNorm[layer], w[0], w[1], w[2], w[3], bq[layer], bk[layer], bv[layer],
                    qNorm[layer], kNorm[layer], null, null, null, null, null);
        }
        if (w.length == 0) return null;
        return new LlamaWeights.Layer(null, null, null, null, null, null, null, null, null, null, ffnNorm[layer], w[0], w[1], w[2], null);
    }

    @Override
    public void release(int layer, Half half) {
        int block = 2 * layer + half.ordinal();
        stats.compute(block, System.nanoTime() - acquiredNanos[block]);
        window.release(block);
    }

    @Override
    public boolean resident() {
        return window.window() == 0;
    }

    @Override
    public void close() {
        window.close();
        residentArena.close();
        try {
            channel.close();
        } catch (IOException ignored) {
            // Read-only channel: nothing to flush, and the process keeps going.
        }
    }
}

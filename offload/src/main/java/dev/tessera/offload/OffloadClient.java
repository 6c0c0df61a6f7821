package dev.tessera.offload;

import dev.tessera.kernels.Backend;
import dev.tessera.models.arch.ModelConfig;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The compute node's side of attention offloading: one link per memory node, the head plan that says which KV heads
 * each holds, and a {@link RemoteAttention} slot per micro-batch lane. Each step it sends the nodes what changed
 * (sequences, positions, block tables); the lanes then send per layer the rows of q, k and v.
 *
 * <p>After any failure every link is dropped and the next step connects afresh: the memory nodes start with empty KV
 * memory, which is right, since the engine has failed every request that was in flight.
 */
public final class OffloadClient implements AutoCloseable {
    private final List<InetSocketAddress> addresses;
    private final HeadPlan plan;
    private final Hello[] hellos;
    private final WireFormat wire;
    private final Duration timeout;
    private final int headDim, numLayers, numLanes;
    private final ComputeTurn turn = new ComputeTurn();
    private final List<RemoteAttention> lanes = new ArrayList<>();
    private MemoryNodeLink[] links;
    private int numBlocks, blockSize;
    private String kvCacheType;
    private long tokenLayers, closedBytes;

    /** Connects to every memory node ({@code weights} sizes their head shares); fails naming the first that refuses. */
    public OffloadClient(String modelName, ModelConfig config, List<InetSocketAddress> addresses, int[] weights, WireFormat wire,
                         int maxBatchTokens, int numLanes, Duration timeout) {
        if (weights.length != addresses.size())
            throw new IllegalArgumentException("--attention-weights has " + weights.length + " entries for " + addresses.size() + " memory nodes");
        this.addresses = List.copyOf(addresses);
        this.plan = HeadPlan.split(config.numHeads(), config.numKvHeads(), weights);
        this.wire = wire;
        this.timeout = timeout;
        this.headDim = config.headDim();
        this.numLayers = config.numLayers();
        this.numLanes = numLanes;
        String model = modelName + " (" + config.numLayers() + " layers, " + config.numHeads() + "/" + config.numKvHeads() + " heads of " + config.headDim() + ")";
        hellos = new Hello[addresses.size()];
        for (int i = 0; i < hellos.length; i++)
            hellos[i] = new Hello(OffloadProtocol.VERSION, model, numLayers, config.numHeads(), config.numKvHeads(), headDim,
                    plan.kvHeadFrom(i), plan.kvHeadTo(i), maxBatchTokens, wire);
        links = connectAll();
    }

    /** The slot for micro-batch {@code lane} of a model graph on {@code backend}. */
    public RemoteAttention lane(int lane, Backend backend, int maxBatchTokens) {
        if (lane != lanes.size() || lane >= numLanes) throw new IllegalArgumentException("lanes are made in order, 0.." + (numLanes - 1));
        RemoteAttention r = new RemoteAttention(this, lane, backend, maxBatchTokens);
        lanes.add(r);
        return r;
    }

    /**
     * The KV memory the memory nodes offer, in bytes of whole-model KV (all heads): the pool they can hold together is
     * bounded by the node that runs out first for its share of the heads.
     */
    public long kvBudgetBytes() {
        long min = Long.MAX_VALUE;
        for (int i = 0; i < links.length; i++)
            min = Math.min(min, (long) Math.min((double) Long.MAX_VALUE, (double) links[i].budgetBytes() * plan.numKvHeads() / plan.numKvHeads(i)));
        return min;
    }

    /** Sets up {@code numBlocks} KV blocks on every node, under the ids of the compute node's pool. */
    public void allocate(int numBlocks, int blockSize, String kvCacheType) {
        this.numBlocks = numBlocks;
        this.blockSize = blockSize;
        this.kvCacheType = kvCacheType;
        allocateAll(links);
    }

    /**
     * Sends the step to every node, reconnecting first if the last step failed; {@code tokens} rows go through every
     * layer (for the bytes-per-token count).
     */
    public void beginStep(AttentionStep step) {
        if (links == null) {
            MemoryNodeLink[] fresh = connectAll();
            try {
                allocateAll(fresh);
            } catch (RuntimeException e) {
                for (MemoryNodeLink l : fresh) l.close();
                throw e;
            }
            links = fresh;
        }
        for (MemoryNodeLink l : links) {
            if (l.failed()) {
                drop();
                throw new MemoryNodeException("memory node " + MemoryNodeLink.name(l.address()) + " is gone", null);
            }
        }
        java.nio.ByteBuffer b = step.encode();
        for (MemoryNodeLink l : links) l.send(OffloadProtocol.Type.STEP, b);
        tokenLayers += (long) step.numRows() * numLayers;
    }

    /** Drops every link after a failure; the next step reconnects. */
    public void drop() {
        if (links == null) return;
        for (MemoryNodeLink l : links) {
            closedBytes += l.bytesSent() + l.bytesReceived();
            l.close();
        }
        links = null;
    }

    /** Tells the nodes to forget every sequence (the engine released them all). */
    public void reset() {
        if (links == null) return;
        try {
            for (MemoryNodeLink l : links) l.send(OffloadProtocol.Type.RESET, OffloadProtocol.payload(0));
        } catch (MemoryNodeException e) {
            drop();
        }
    }

    /** Bytes on the wire (both ways, frame overhead included) per token per layer, so far. */
    public double bytesPerTokenLayer() {
        long bytes = closedBytes;
        if (links != null) for (MemoryNodeLink l : links) bytes += l.bytesSent() + l.bytesReceived();
        return tokenLayers == 0 ? 0 : (double) bytes / tokenLayers;
    }

    /** Lamina's figure for the same: (2 + 2/G)·e·d, with G query heads per KV head, e bytes per element, d = model width. */
    public double paperBytesPerTokenLayer() {
        return (2 + 2.0 / plan.groupSize()) * wire.bytes * plan.numHeads() * headDim;
    }

    public HeadPlan plan() { return plan; }
    public WireFormat wire() { return wire; }
    public int headDim() { return headDim; }
    public ComputeTurn turn() { return turn; }
    MemoryNodeLink[] links() {
        MemoryNodeLink[] l = links;
        if (l == null) throw new MemoryNodeException("memory nodes are disconnected", null);
        return l;
    }

    /** One line per memory node for logs. */
    public List<String> describe() {
        List<String> out = new ArrayList<>();
        MemoryNodeLink[] l = links;
        for (int i = 0; i < addresses.size(); i++)
            out.add("memory node " + MemoryNodeLink.name(addresses.get(i)) + ": KV heads " + plan.kvHeadFrom(i) + ".." + (plan.kvHeadTo(i) - 1)
                    + (l == null ? " (disconnected)" : ", " + l[i].device() + ", --kv-cache-memory " + l[i].budgetBytes()));
        return out;
    }

    private MemoryNodeLink[] connectAll() {
        MemoryNodeLink[] out = new MemoryNodeLink[addresses.size()];
        try {
            for (int i = 0; i < out.length; i++) out[i] = MemoryNodeLink.connect(addresses.get(i), hellos[i], numLanes, timeout);
        } catch (RuntimeException e) {
            for (MemoryNodeLink l : out) if (l != null) l.close();
            throw e;
        }
        return out;
    }

    private void allocateAll(MemoryNodeLink[] ls) {
        for (MemoryNodeLink l : ls) l.allocate(numBlocks, blockSize, kvCacheType);
    }

    @Override
    public void close() {
        drop();
    }
}

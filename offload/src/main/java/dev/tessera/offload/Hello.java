package dev.tessera.offload;

import java.nio.ByteBuffer;

import static dev.tessera.offload.OffloadProtocol.*;

/**
 * Compute node → memory node, first frame of a session: the model's attention shape, which KV heads this node holds,
 * and how rows travel. The KV block layout follows in ALLOCATE, once the compute node has sized its pool.
 *
 * @param model       the model's name and shape, for the memory node's log
 * @param kvHeadFrom  first KV head this node holds; it holds [kvHeadFrom, kvHeadTo)
 */
public record Hello(int version, String model, int numLayers, int numHeads, int numKvHeads, int headDim, int kvHeadFrom,
                    int kvHeadTo, int maxBatchTokens, WireFormat wire) {

    static final int MAX_HEADS = 1 << 12, MAX_HEAD_DIM = 1 << 12, MAX_LAYERS = 1 << 12, MAX_BATCH = 1 << 20;

    public int numOwnedKvHeads() { return kvHeadTo - kvHeadFrom; }
    public int numOwnedHeads() { return numOwnedKvHeads() * (numHeads / numKvHeads); }

    public ByteBuffer encode() {
        ByteBuffer b = payload(64 + stringBytes(model));
        b.putInt(version);
        putString(b, model);
        b.putInt(numLayers).putInt(numHeads).putInt(numKvHeads).putInt(headDim).putInt(kvHeadFrom).putInt(kvHeadTo)
                .putInt(maxBatchTokens).put((byte) wire.ordinal());
        return b;
    }

    /** Decodes and checks that the head plan is consistent; anything else is a ProtocolException with one line. */
    public static Hello decode(ByteBuffer b) throws ProtocolException {
        int version = readInt(b, "protocol version", 0, Integer.MAX_VALUE);
        if (version != VERSION) throw new ProtocolException("protocol version " + version + ", this memory node speaks " + VERSION);
        String model = readString(b);
        int layers = readInt(b, "numLayers", 1, MAX_LAYERS);
        int heads = readInt(b, "numHeads", 1, MAX_HEADS);
        int kvHeads = readInt(b, "numKvHeads", 1, heads);
        if (heads % kvHeads != 0) throw new ProtocolException("numHeads " + heads + " is not a multiple of numKvHeads " + kvHeads);
        int headDim = readInt(b, "headDim", 1, MAX_HEAD_DIM);
        int from = readInt(b, "kvHeadFrom", 0, kvHeads - 1);
        int to = readInt(b, "kvHeadTo", from + 1, kvHeads);
        int maxBatch = readInt(b, "maxBatchTokens", 1, MAX_BATCH);
        need(b, 1, "wire format");
        int w = b.get();
        if (w < 0 || w >= WireFormat.values().length) throw new ProtocolException("unknown wire format " + w);
        end(b, Type.HELLO);
        return new Hello(version, model, layers, heads, kvHeads, headDim, from, to, maxBatch, WireFormat.values()[w]);
    }
}

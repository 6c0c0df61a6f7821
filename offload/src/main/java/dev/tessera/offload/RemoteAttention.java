package dev.tessera.offload;

import dev.tessera.kernels.Activations;
import dev.tessera.kernels.AttentionBatch;
import dev.tessera.kernels.Backend;
import dev.tessera.models.arch.AttentionSlot;

import java.nio.ByteBuffer;

/**
 * One micro-batch's attention on the memory nodes: sends each node the new q, k, v rows of its heads, gives the compute
 * device up to the other micro-batch while the nodes work, and gathers their output rows. The model graph on the
 * compute node calls it in place of its own attention; the batch's caches are not used here, the nodes hold them.
 */
public final class RemoteAttention implements AttentionSlot {
    private final OffloadClient client;
    private final int lane;
    private final Backend backend;
    private final float[] q, k, v, att;
    private int rowFrom;

    RemoteAttention(OffloadClient client, int lane, Backend backend, int maxBatchTokens) {
        this.client = client;
        this.lane = lane;
        this.backend = backend;
        int hd = client.headDim();
        q = new float[maxBatchTokens * client.plan().numHeads() * hd];
        k = new float[maxBatchTokens * client.plan().numKvHeads() * hd];
        v = new float[k.length];
        att = new float[q.length];
    }

    /** This micro-batch's rows start at row {@code rowFrom} of the step the client last began. */
    public void rows(int rowFrom) {
        this.rowFrom = rowFrom;
    }

    @Override
    public boolean recordable() {
        return false;
    }

    @Override
    public void attend(int layer, Activations qa, Activations ka, Activations va, AttentionBatch batch,
                       int numHeads, int numKvHeads, int headDim, Activations out) {
        int n = batch.numTokens();
        HeadPlan plan = client.plan();
        WireFormat wire = client.wire();
        int qw = numHeads * headDim, kw = numKvHeads * headDim;
        backend.download(qa, q, n);
        backend.download(ka, k, n);
        backend.download(va, v, n);
        MemoryNodeLink[] links = client.links();
        for (int i = 0; i < links.length; i++) {
            int q0 = plan.headFrom(i) * headDim, q1 = q0 + plan.numHeads(i) * headDim;
            int k0 = plan.kvHeadFrom(i) * headDim, k1 = plan.kvHeadTo(i) * headDim;
            ByteBuffer b = OffloadProtocol.payload(13 + (int) wire.size(n, (q1 - q0) + 2 * (k1 - k0)));
            b.put((byte) lane).putInt(layer).putInt(rowFrom).putInt(n);
            wire.put(b, q, n, qw, q0, q1);
            wire.put(b, k, n, kw, k0, k1);
            wire.put(b, v, n, kw, k0, k1);
            links[i].send(OffloadProtocol.Type.ATTEND, b);
        }
        ComputeTurn turn = client.turn();
        turn.give();
        try {
            for (int i = 0; i < links.length; i++) {
                ByteBuffer b = links[i].await(lane);
                b.get();
                int l = b.getInt();
                int q0 = plan.headFrom(i) * headDim, q1 = q0 + plan.numHeads(i) * headDim;
                if (l != layer || b.remaining() != wire.size(n, q1 - q0))
                    throw new MemoryNodeException("memory node " + MemoryNodeLink.name(links[i].address()) + " answered layer " + l + " with "
                            + b.remaining() + " bytes; expected layer " + layer + " with " + wire.size(n, q1 - q0), null);
                wire.get(b, att, n, qw, q0, q1);
            }
        } finally {
            turn.take();
        }
        backend.upload(att, out, n);
    }
}

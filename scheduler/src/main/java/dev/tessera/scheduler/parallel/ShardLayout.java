package dev.tessera.scheduler.parallel;

import dev.tessera.models.arch.Architecture;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.ArrayList;
import java.util.List;

/**
 * The tensors one device holds, as slices of the source model's tensors. Block 2l is layer l's attention part
 * (attn_q/k/v rows of the device's heads, attn_output columns), block 2l+1 its FFN part (ffn_gate/ffn_up rows,
 * ffn_down columns). The per-layer norms (and qwen2 biases) are small and stay resident outside the window.
 * A slice with no rows or columns (a device without heads or FFN columns) is left out.
 */
public final class ShardLayout {
    /** Rows [rowStart, rowEnd) and columns [colStart, colEnd) of source tensor {@code name}; a 1-D tensor has one row. */
    public record Slice(String name, int rowStart, int rowEnd, int colStart, int colEnd, boolean vector) {
        public int rows() { return rowEnd - rowStart; }
        public int cols() { return colEnd - colStart; }

        /** GGUF dims of the sliced tensor (ne0 first). */
        public long[] dims() { return vector ? new long[]{cols()} : new long[]{cols(), rows()}; }
    }

    private final List<List<Slice>> blocks = new ArrayList<>();
    private final List<Slice> resident = new ArrayList<>();

    public ShardLayout(ModelConfig c, ShardPlan plan, int rank) {
        // A whole-projection q/k norm (OLMoE) needs every rank's heads for its rms: no split of it is exact.
        if (c.architecture().qkNorm() == Architecture.QkNorm.WHOLE)
            throw new IllegalArgumentException(c.architecture().name() + " normalises q and k over all heads: its attention cannot be split by heads");
        int hd = c.headDim();
        int q0 = plan.headStart(rank) * hd, q1 = q0 + plan.numHeads(rank) * hd;
        int k0 = plan.kvHeadStart()[rank] * hd, k1 = k0 + plan.numKvHeads(rank) * hd;
        int f0 = plan.ffnStart()[rank], f1 = f0 + plan.ffnColumns(rank);
        int qDim = c.numHeads() * hd;
        boolean bias = c.architecture().attentionBias();
        for (int l = 0; l < c.numLayers(); l++) {
            String b = "blk." + l + ".";
            resident.add(vector(b + "attn_norm.weight", 0, c.dim()));
            resident.add(vector(b + "ffn_norm.weight", 0, c.dim()));
            List<Slice> attention = new ArrayList<>();
            if (q1 > q0) {
                attention.add(new Slice(b + "attn_q.weight", q0, q1, 0, c.dim(), false));
                attention.add(new Slice(b + "attn_k.weight", k0, k1, 0, c.dim(), false));
                attention.add(new Slice(b + "attn_v.weight", k0, k1, 0, c.dim(), false));
                attention.add(new Slice(b + "attn_output.weight", 0, c.dim(), q0, q1, false));
                if (bias) {
                    resident.add(vector(b + "attn_q.bias", q0, q1));
                    resident.add(vector(b + "attn_k.bias", k0, k1));
                    resident.add(vector(b + "attn_v.bias", k0, k1));
                }
                if (c.architecture().qkNorm() == Architecture.QkNorm.PER_HEAD) {
                    // One head wide, the same for every head: each rank holds it whole.
                    resident.add(vector(b + "attn_q_norm.weight", 0, hd));
                    resident.add(vector(b + "attn_k_norm.weight", 0, hd));
                }
            }
            List<Slice> ffn = new ArrayList<>();
            if (f1 > f0) {
                ffn.add(new Slice(b + "ffn_gate.weight", f0, f1, 0, c.dim(), false));
                ffn.add(new Slice(b + "ffn_up.weight", f0, f1, 0, c.dim(), false));
                ffn.add(new Slice(b + "ffn_down.weight", 0, c.dim(), f0, f1, false));
            }
            blocks.add(attention);
            blocks.add(ffn);
        }
        if (qDim < q1) throw new IllegalStateException("plan heads beyond the model: " + plan);
    }

    private static Slice vector(String name, int start, int end) {
        return new Slice(name, 0, 1, start, end, true);
    }

    public int numBlocks() { return blocks.size(); }

    public List<Slice> block(int index) { return blocks.get(index); }

    public List<Slice> resident() { return resident; }

    public List<Slice> all() {
        List<Slice> out = new ArrayList<>(resident);
        for (List<Slice> b : blocks) out.addAll(b);
        return out;
    }

    /** Bytes of the slice in the source tensor's type. */
    public static long sizeBytes(GgufTensorInfo src, Slice s) {
        return (long) s.rows() * src.type().byteSize(s.cols());
    }

    /**
     * Reads a slice of a source tensor from the file with positional reads (no mapping, so only {@code dst} is
     * resident afterwards). Column bounds must fall on block boundaries of the tensor's type.
     */
    public static void read(FileChannel channel, GgufFile file, Slice s, MemorySegment dst) {
        GgufTensorInfo src = file.tensor(s.name());
        if (src == null) throw file.fail("missing tensor " + s.name());
        int bs = src.type().blockSize;
        if (s.colStart() % bs != 0 || s.colEnd() % bs != 0)
            throw file.fail("tensor " + s.name() + " of type " + src.type() + " cannot be split at column " + s.colStart() + ".." + s.colEnd() + " (block size " + bs + ")");
        if (s.colEnd() > src.cols() || s.rowEnd() > src.rows())
            throw file.fail("tensor " + s.name() + " is [" + src.rows() + "x" + src.cols() + "], slice asks rows " + s.rowEnd() + " cols " + s.colEnd());
        long rowBytes = src.type().byteSize(src.cols());
        long sliceRowBytes = src.type().byteSize(s.cols());
        long colOffset = src.type().byteSize(s.colStart());
        long base = file.dataOffset() + src.offset();
        if (dst.byteSize() != s.rows() * sliceRowBytes) throw new IllegalStateException(s.name() + ": destination of " + dst.byteSize() + " bytes for " + s.rows() * sliceRowBytes);
        try {
            if (sliceRowBytes == rowBytes) {
                readFully(channel, dst.asByteBuffer(), base + s.rowStart() * rowBytes);
            } else {
                for (int r = 0; r < s.rows(); r++)
                    readFully(channel, dst.asSlice(r * sliceRowBytes, sliceRowBytes).asByteBuffer(),
                            base + (s.rowStart() + r) * rowBytes + colOffset);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(file.path().getFileName() + ": cannot read " + s.name() + ": " + e.getMessage(), e);
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer buf, long position) throws IOException {
        // A single ByteBuffer views at most 2 GiB; tensors of one block are far smaller.
        while (buf.hasRemaining()) {
            int n = channel.read(buf, position);
            if (n < 0) throw new IOException("unexpected end of file at byte " + position);
            position += n;
        }
    }
}

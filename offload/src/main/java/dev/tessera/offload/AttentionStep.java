package dev.tessera.offload;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import static dev.tessera.offload.OffloadProtocol.*;

/**
 * What a memory node needs of one engine step, as plain data: the sequences in row order with their row counts,
 * first positions and block-table changes, and the sequences let go since the last step. Token ids never travel.
 */
public record AttentionStep(List<Sequence> sequences, int[] released) {

    /**
     * @param tableFrom the table entry {@code newBlocks} start at (0 replaces the table); no new blocks: unchanged
     */
    public record Sequence(int id, int numRows, int startPosition, int tableFrom, int[] newBlocks) {}

    static final int MAX_SEQUENCES = 1 << 16, MAX_BLOCK_ID = (1 << 30) - 1, MAX_POSITION = 1 << 26;

    public int numRows() {
        int n = 0;
        for (Sequence s : sequences) n += s.numRows();
        return n;
    }

    public ByteBuffer encode() {
        int bytes = 8 + 4 * released.length;
        for (Sequence s : sequences) bytes += 20 + 4 * s.newBlocks().length;
        ByteBuffer b = payload(bytes);
        b.putInt(sequences.size());
        for (Sequence s : sequences) {
            b.putInt(s.id()).putInt(s.numRows()).putInt(s.startPosition()).putInt(s.tableFrom()).putInt(s.newBlocks().length);
            for (int id : s.newBlocks()) b.putInt(id);
        }
        b.putInt(released.length);
        for (int id : released) b.putInt(id);
        return b;
    }

    /** Decodes a STEP with at most {@code maxRows} rows and block ids below {@code numBlocks}. */
    public static AttentionStep decode(ByteBuffer b, int maxRows, int numBlocks) throws ProtocolException {
        int n = readInt(b, "sequence count", 0, MAX_SEQUENCES);
        List<Sequence> seqs = new ArrayList<>(n);
        int rows = 0;
        for (int i = 0; i < n; i++) {
            int id = readInt(b, "sequence id", 0, Integer.MAX_VALUE);
            int numRows = readInt(b, "row count", 1, maxRows - rows);
            rows += numRows;
            int start = readInt(b, "start position", 0, MAX_POSITION);
            int from = readInt(b, "table entry", 0, MAX_POSITION);
            int k = readInt(b, "new block count", 0, MAX_POSITION);
            need(b, 4L * k, "block ids");
            int[] blocks = new int[k];
            for (int j = 0; j < k; j++) blocks[j] = readInt(b, "block id", 0, numBlocks - 1);
            seqs.add(new Sequence(id, numRows, start, from, blocks));
        }
        int r = readInt(b, "released count", 0, MAX_SEQUENCES);
        need(b, 4L * r, "released ids");
        int[] released = new int[r];
        for (int j = 0; j < r; j++) released[j] = b.getInt();
        end(b, Type.STEP);
        return new AttentionStep(seqs, released);
    }
}

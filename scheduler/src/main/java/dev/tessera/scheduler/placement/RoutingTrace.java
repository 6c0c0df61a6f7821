package dev.tessera.scheduler.placement;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Per token, per MoE layer, the experts the router chose: what {@code tessera trace-routing} writes and
 * {@code tessera place} reads. A text format, one token per line, small enough to read by eye:
 * <pre>
 * tessera-routing-trace 1
 * model synth-moe-16x layers 12 experts 16 top_k 2
 * 0 0 3,7 12,1 ...        sequence, position, then per layer the top-k expert ids (first choice first)
 * </pre>
 * Lines starting with {@code #} are comments. {@code experts[t][l * topK + s]} is slot s of token t at layer l.
 */
public record RoutingTrace(String model, int numLayers, int numExperts, int topK, int[] sequences, int[] positions, int[][] experts) {
    static final String MAGIC = "tessera-routing-trace";
    static final int VERSION = 1;

    public int numTokens() {
        return experts.length;
    }

    /** Expert of slot s of token t at layer l. */
    public int expert(int t, int l, int s) {
        return experts[t][l * topK + s];
    }

    /** The tokens of the given sequences, in order (a held-out split is by sequence, never within one). */
    public RoutingTrace ofSequences(java.util.function.IntPredicate keep) {
        List<Integer> rows = new ArrayList<>();
        for (int t = 0; t < numTokens(); t++) if (keep.test(sequences[t])) rows.add(t);
        return select(rows.stream().mapToInt(Integer::intValue).toArray());
    }

    /** The first {@code count} tokens (a warm-start sample). */
    public RoutingTrace head(int count) {
        int[] rows = new int[Math.min(count, numTokens())];
        for (int i = 0; i < rows.length; i++) rows[i] = i;
        return select(rows);
    }

    private RoutingTrace select(int[] rows) {
        int[] seq = new int[rows.length], pos = new int[rows.length];
        int[][] ex = new int[rows.length][];
        for (int i = 0; i < rows.length; i++) { seq[i] = sequences[rows[i]]; pos[i] = positions[rows[i]]; ex[i] = experts[rows[i]]; }
        return new RoutingTrace(model, numLayers, numExperts, topK, seq, pos, ex);
    }

    public void write(Path out) {
        try (Writer w = Files.newBufferedWriter(out, StandardCharsets.UTF_8)) {
            w.write(MAGIC + " " + VERSION + "\n");
            w.write("model " + model.replaceAll("\\s", "_") + " layers " + numLayers + " experts " + numExperts + " top_k " + topK + "\n");
            StringBuilder line = new StringBuilder();
            for (int t = 0; t < numTokens(); t++) {
                line.setLength(0);
                line.append(sequences[t]).append(' ').append(positions[t]);
                for (int l = 0; l < numLayers; l++) {
                    line.append(' ');
                    for (int s = 0; s < topK; s++) {
                        if (s > 0) line.append(',');
                        line.append(expert(t, l, s));
                    }
                }
                w.write(line.append('\n').toString());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
    }

    /** Reads a trace; a malformed one is an IllegalArgumentException naming the file and line. */
    public static RoutingTrace read(Path in) {
        try (BufferedReader r = Files.newBufferedReader(in, StandardCharsets.UTF_8)) {
            String first = r.readLine();
            if (first == null || !first.equals(MAGIC + " " + VERSION))
                throw new IllegalArgumentException(in + ": not a routing trace (expected first line '" + MAGIC + " " + VERSION + "')");
            String header = r.readLine();
            String[] h = header == null ? new String[0] : header.trim().split("\\s+");
            if (h.length != 8 || !h[0].equals("model") || !h[2].equals("layers") || !h[4].equals("experts") || !h[6].equals("top_k"))
                throw new IllegalArgumentException(in + ":2: expected 'model NAME layers L experts E top_k K', found '" + header + "'");
            int numLayers = positive(in, 2, h[3]), numExperts = positive(in, 2, h[5]), topK = positive(in, 2, h[7]);
            if (topK > numExperts) throw new IllegalArgumentException(in + ":2: top_k " + topK + " exceeds experts " + numExperts);
            List<int[]> rows = new ArrayList<>();
            List<int[]> ids = new ArrayList<>();
            String line;
            int lineNo = 2;
            while ((line = r.readLine()) != null) {
                lineNo++;
                if (line.isBlank() || line.startsWith("#")) continue;
                String[] f = line.trim().split("\\s+");
                if (f.length != 2 + numLayers) throw new IllegalArgumentException(in + ":" + lineNo + ": expected sequence, position and " + numLayers + " layers, found " + f.length + " fields");
                int[] e = new int[numLayers * topK];
                for (int l = 0; l < numLayers; l++) {
                    String[] slots = f[2 + l].split(",");
                    if (slots.length != topK) throw new IllegalArgumentException(in + ":" + lineNo + ": layer " + l + " has " + slots.length + " experts, expected " + topK);
                    for (int s = 0; s < topK; s++) {
                        int id = integer(in, lineNo, slots[s]);
                        if (id < 0 || id >= numExperts) throw new IllegalArgumentException(in + ":" + lineNo + ": expert " + id + " outside 0.." + (numExperts - 1));
                        e[l * topK + s] = id;
                    }
                }
                rows.add(new int[] {integer(in, lineNo, f[0]), integer(in, lineNo, f[1])});
                ids.add(e);
            }
            int n = rows.size();
            int[] seq = new int[n], pos = new int[n];
            for (int i = 0; i < n; i++) { seq[i] = rows.get(i)[0]; pos[i] = rows.get(i)[1]; }
            return new RoutingTrace(h[1], numLayers, numExperts, topK, seq, pos, ids.toArray(new int[0][]));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + in + ": " + e.getMessage(), e);
        }
    }

    private static int positive(Path in, int line, String v) {
        int n = integer(in, line, v);
        if (n < 1) throw new IllegalArgumentException(in + ":" + line + ": expected a positive count, found " + v);
        return n;
    }

    private static int integer(Path in, int line, String v) {
        try {
            return Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(in + ":" + line + ": expected an integer, found '" + v + "'");
        }
    }
}

package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.RopeTable;
import dev.tessera.models.arch.Architecture;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufArray;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.gguf.GgufValue;
import dev.tessera.models.gguf.GgufWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Writes one device's shard of a model as a GGUF: the sliced tensors under their source names, and metadata with the
 * model configuration, the plan, the rank and the source model's fingerprint, so a worker can prove at the handshake
 * that it holds the part the master expects. Tokenizer, embeddings and output head are not written: they stay on the
 * master, and with them every prompt and every generated text.
 */
public final class ShardWriter {
    static final String PREFIX = "tessera.tp.";

    private ShardWriter() {}

    /** File name of a shard: one model, one plan, one rank. */
    public static String fileName(String modelName, ShardPlan plan, int rank) {
        String base = modelName.endsWith(".gguf") ? modelName.substring(0, modelName.length() - 5) : modelName;
        StringBuilder w = new StringBuilder();
        for (int i = 0; i < plan.weights().length; i++) w.append(i > 0 ? "-" : "").append(plan.weights()[i]);
        return base + ".tp" + w + ".rank" + rank + ".gguf";
    }

    public static void write(GgufFile src, ModelConfig c, ShardPlan plan, int rank, String fingerprint, Path out) {
        ShardLayout layout = new ShardLayout(c, plan, rank);
        GgufWriter w = new GgufWriter();
        w.metadata("general.architecture", GgufValue.ofString("tessera-tp-shard"));
        w.metadata(PREFIX + "rank", GgufValue.ofInt32(rank));
        w.metadata(PREFIX + "plan", GgufValue.ofString(plan.describe()));
        w.metadata(PREFIX + "weights", GgufValue.ofArray(GgufArray.ofInt32s(plan.weights())));
        w.metadata(PREFIX + "kv_head_start", GgufValue.ofArray(GgufArray.ofInt32s(plan.kvHeadStart())));
        w.metadata(PREFIX + "ffn_start", GgufValue.ofArray(GgufArray.ofInt32s(plan.ffnStart())));
        w.metadata(PREFIX + "source_fingerprint", GgufValue.ofString(fingerprint));
        w.metadata(PREFIX + "source_name", GgufValue.ofString(src.path().getFileName().toString()));
        w.metadata(PREFIX + "architecture", GgufValue.ofString(c.architecture().name()));
        int[] dims = {c.dim(), c.hiddenDim(), c.numLayers(), c.numHeads(), c.numKvHeads(), c.headDim(), c.vocabSize(), c.contextLength(), c.rope().ropeDim()};
        w.metadata(PREFIX + "dims", GgufValue.ofArray(GgufArray.ofInt32s(dims)));
        w.metadata(PREFIX + "rms_norm_eps", GgufValue.ofFloat32(c.rmsNormEps()));
        w.metadata(PREFIX + "rope_inv_freq", GgufValue.ofArray(GgufArray.ofFloats(c.rope().invFreq())));
        w.metadata(PREFIX + "rope_neox", GgufValue.ofBool(c.rope().neox()));
        for (ShardLayout.Slice s : layout.all()) {
            GgufTensorInfo t = src.tensor(s.name());
            if (t == null) throw src.fail("missing tensor " + s.name());
            w.tensor(s.name(), s.dims(), t.type());
        }
        try (FileChannel ch = FileChannel.open(src.path(), StandardOpenOption.READ)) {
            java.util.Map<String, ShardLayout.Slice> byName = new java.util.HashMap<>();
            for (ShardLayout.Slice s : layout.all()) byName.put(s.name(), s);
            w.write(out, (info, dst) -> ShardLayout.read(ch, src, byName.get(info.name()), dst));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + src.path() + ": " + e.getMessage(), e);
        }
    }

    /** The configuration stored in a shard (no tokenizer, no embeddings: vocabSize is informational). */
    public static ModelConfig config(GgufFile shard) {
        int[] d = requireInts(shard, "dims", 9);
        Architecture arch = Architecture.find(shard.requireString(PREFIX + "architecture"));
        if (arch == null) throw shard.fail("unsupported architecture " + shard.getString(PREFIX + "architecture", "?"));
        float[] inv = shard.getFloatArray(PREFIX + "rope_inv_freq");
        if (inv == null || inv.length != d[8] / 2) throw shard.fail("metadata " + PREFIX + "rope_inv_freq must hold " + d[8] / 2 + " floats");
        RopeTable rope = new RopeTable(d[8], inv, shard.getBool(PREFIX + "rope_neox", false));
        return new ModelConfig(arch, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], (float) shard.getDouble(PREFIX + "rms_norm_eps", 1e-5), rope);
    }

    public static ShardPlan plan(GgufFile shard, ModelConfig c) {
        int[] w = shard.getIntArray(PREFIX + "weights");
        if (w == null || w.length < 1) throw shard.fail("missing metadata " + PREFIX + "weights");
        int[] kv = requireInts(shard, "kv_head_start", w.length + 1);
        int[] ffn = requireInts(shard, "ffn_start", w.length + 1);
        ShardPlan p = new ShardPlan(w, c.numHeads(), c.numKvHeads(), c.headDim(), c.hiddenDim(), kv, ffn);
        if (!p.describe().equals(shard.getString(PREFIX + "plan", ""))) throw shard.fail("plan metadata disagrees with " + PREFIX + "plan");
        return p;
    }

    public static int rank(GgufFile shard) { return shard.requireInt(PREFIX + "rank"); }

    public static String fingerprint(GgufFile shard) { return shard.requireString(PREFIX + "source_fingerprint"); }

    private static int[] requireInts(GgufFile f, String key, int n) {
        int[] v = f.getIntArray(PREFIX + key);
        if (v == null || v.length != n) throw f.fail("metadata " + PREFIX + key + " must hold " + n + " integers");
        return v;
    }

    /**
     * Identity of a source model: SHA-256 of its size, its first 4 MiB (header, metadata, tensor directory) and 64 KiB
     * at each of 64 evenly spaced offsets. Cheap enough for every master start on a multi-GB file; a shard made from a
     * different file or a re-quantized one does not match.
     */
    public static String fingerprint(Path model) {
        try (FileChannel ch = FileChannel.open(model, StandardOpenOption.READ)) {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            long size = ch.size();
            sha.update(java.nio.ByteBuffer.allocate(8).putLong(size).array());
            digest(ch, sha, 0, Math.min(size, 4L << 20));
            for (int i = 0; i < 64; i++) {
                long at = size / 64 * i;
                digest(ch, sha, at, Math.min(64 << 10, size - at));
            }
            return HexFormat.of().formatHex(sha.digest()).substring(0, 32);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + model + ": " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void digest(FileChannel ch, MessageDigest sha, long at, long n) throws IOException {
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate((int) n);
        while (buf.hasRemaining() && ch.read(buf, at + buf.position()) > 0) { }
        sha.update(buf.flip());
    }

    /** Writes the shard of every rank into dir; returns their paths. */
    public static Path[] writeAll(GgufFile src, ModelConfig c, ShardPlan plan, Path dir, java.io.PrintStream log) {
        String fp = fingerprint(src.path());
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create " + dir + ": " + e.getMessage(), e);
        }
        Path[] out = new Path[plan.numDevices()];
        for (int r = 0; r < out.length; r++) {
            out[r] = dir.resolve(fileName(src.path().getFileName().toString(), plan, r));
            write(src, c, plan, r, fp, out[r]);
            if (log != null) log.println("tessera shard: rank " + r + " -> " + out[r] + " (" + sizeOf(out[r]) / 1024 + " KiB)");
        }
        return out;
    }

    private static long sizeOf(Path p) {
        try { return Files.size(p); } catch (IOException e) { return -1; }
    }

}

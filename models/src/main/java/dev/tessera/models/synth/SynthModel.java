package dev.tessera.models.synth;

import dev.tessera.kernels.TensorType;
import dev.tessera.models.arch.Architecture;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.gguf.GgufTensorInfo;
import dev.tessera.models.gguf.GgufValue;
import dev.tessera.models.gguf.GgufWriter;
import dev.tessera.models.quant.Quantizer;

import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * A Llama-shaped model with random weights and a real tokenizer, written as GGUF exactly as llama.cpp names and lays
 * out its tensors, for any architecture of the table ({@link Architecture}): llama by default; qwen2 and qwen2moe add
 * attention biases (qwen2moe also a gated shared expert as wide as an expert); qwen3, qwen3moe and olmoe add q/k norms;
 * deepseek keeps its first layer dense and adds two ungated shared experts. Weights are deterministic in {@code seed}:
 * each row has its own generator seeded from
 * (seed, tensor, row), so the bytes do not depend on how rows are spread over threads.
 */
public record SynthModel(String name, int dim, int numLayers, int numHeads, int numKvHeads, int hiddenDim,
                         TensorType type, long seed, int numExperts, int numExpertsUsed, float affinity, SynthMix mix,
                         String architecture, int keyLength) {

    /** Every 2-D tensor in {@code type}. */
    public SynthModel(String name, int dim, int numLayers, int numHeads, int numKvHeads, int hiddenDim,
                      TensorType type, long seed, int numExperts, int numExpertsUsed, float affinity) {
        this(name, dim, numLayers, numHeads, numKvHeads, hiddenDim, type, seed, numExperts, numExpertsUsed, affinity, SynthMix.PURE, "llama", 0);
    }

    /** A dense model. */
    public SynthModel(String name, int dim, int numLayers, int numHeads, int numKvHeads, int hiddenDim, TensorType type, long seed) {
        this(name, dim, numLayers, numHeads, numKvHeads, hiddenDim, type, seed, 0, 0, 0f);
    }

    static final float WEIGHT_STD = 0.02f;
    /**
     * The token embedding's std in MoE models. Larger than the other weights so the residual stream stays close to the
     * token's embedding across layers (each layer adds about 0.1 per element): planted router affinity then carries
     * from one layer's router to the next ({@link PlantedRouters}).
     */
    static final float MOE_EMBED_STD = 1.0f;
    static final int CONTEXT_LENGTH = 4096;
    /** DeepSeek-MoE's extras, as DeepSeek-MoE-16B has them but for the scale (1.0 there), which is not 1 so that it shows. */
    static final int DEEPSEEK_LEADING_DENSE = 1, DEEPSEEK_SHARED_EXPERTS = 2;
    static final float DEEPSEEK_WEIGHTS_SCALE = 1.5f;
    /** Elements generated per parallel task: large enough to amortise scheduling, small enough to balance 2 cores. */
    static final int CHUNK_ELEMENTS = 1 << 20;

    public static SynthModel of(SynthPreset preset, TensorType type, long seed) {
        return new SynthModel("synth-" + preset.presetName, preset.dim, preset.numLayers, preset.numHeads,
                preset.numKvHeads, preset.hiddenDim, type, seed, preset.numExperts, preset.numExpertsUsed, 0f, SynthMix.PURE,
                preset.architecture, preset.headDim);
    }

    /** This model with inter-layer expert affinity {@code s} (0..1) planted in its routers. */
    public SynthModel withAffinity(float s) {
        return new SynthModel(name, dim, numLayers, numHeads, numKvHeads, hiddenDim, type, seed, numExperts, numExpertsUsed, s, mix, architecture, keyLength);
    }

    public SynthModel withName(String newName) {
        return new SynthModel(newName, dim, numLayers, numHeads, numKvHeads, hiddenDim, type, seed, numExperts, numExpertsUsed, affinity, mix, architecture, keyLength);
    }

    /** This model with its tensors' types chosen by {@code newMix} (Q4_K_M needs a Q4_K model). */
    public SynthModel withMix(SynthMix newMix) {
        return new SynthModel(name, dim, numLayers, numHeads, numKvHeads, hiddenDim, type, seed, numExperts, numExpertsUsed, affinity, newMix, architecture, keyLength);
    }

    /** This model as architecture {@code name} of {@link Architecture#SUPPORTED} (a MoE one needs experts, a dense one none). */
    public SynthModel withArchitecture(String name) {
        return new SynthModel(this.name, dim, numLayers, numHeads, numKvHeads, hiddenDim, type, seed, numExperts, numExpertsUsed, affinity, mix, name, keyLength);
    }

    /**
     * This model with heads {@code length} wide instead of dim / heads (attention.key_length and value_length, as
     * Qwen3's small models have: 16 heads of 128 on a width of 1024); q is then heads × length wide.
     */
    public SynthModel withHeadDim(int length) {
        return new SynthModel(name, dim, numLayers, numHeads, numKvHeads, hiddenDim, type, seed, numExperts, numExpertsUsed, affinity, mix, architecture, length);
    }

    public boolean isMoe() {
        return numExperts > 0;
    }

    public int headDim() {
        return keyLength > 0 ? keyLength : dim / numHeads;
    }

    public int kvDim() {
        return numKvHeads * headDim();
    }

    public int qDim() {
        return numHeads * headDim();
    }

    /** ggml's LLAMA_FTYPE for a model whose 2-D weights are all {@code type}; -1 if synth cannot write it. */
    public static int fileType(TensorType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q4_1 -> 3;
            case Q8_0 -> 7;
            case Q5_0 -> 8;
            case Q5_1 -> 9;
            case Q4_K -> 15; // MOSTLY_Q4_K_M
            case Q5_K -> 17; // MOSTLY_Q5_K_M
            case Q6_K -> 18;
            case BF16 -> 32;
            default -> -1;
        };
    }

    /** Throws IllegalArgumentException, one line, when this shape or type cannot make a valid model. */
    public void validate() {
        if (dim <= 0 || numLayers <= 0 || numHeads <= 0 || numKvHeads <= 0 || hiddenDim <= 0)
            throw new IllegalArgumentException("dimensions must be positive: dim " + dim + ", layers " + numLayers + ", heads " + numHeads + ", kv heads " + numKvHeads + ", ffn " + hiddenDim);
        if (keyLength < 0 || keyLength > 1024) throw new IllegalArgumentException("head dimension " + keyLength + " is outside 1..1024");
        if (keyLength == 0 && dim % numHeads != 0) throw new IllegalArgumentException("dim " + dim + " is not a multiple of heads " + numHeads);
        if (numHeads % numKvHeads != 0) throw new IllegalArgumentException("heads " + numHeads + " is not a multiple of kv heads " + numKvHeads);
        if (headDim() % 2 != 0) throw new IllegalArgumentException("head dimension " + headDim() + " must be even for RoPE");
        if (fileType(type) < 0) throw new IllegalArgumentException("synth cannot write " + type.ggmlName() + " weights");
        if (mix == null) throw new IllegalArgumentException("no type mix given (SynthMix.PURE for one type)");
        Architecture arch = Architecture.find(architecture);
        if (arch == null) throw new IllegalArgumentException("unknown architecture '" + architecture + "' (" + Architecture.supportedNames() + ")");
        if (arch.experts() == Architecture.ExpertStyle.NONE && numExperts > 0)
            throw new IllegalArgumentException(architecture + " has no mixture-of-experts layers (MoE architectures: " + Architecture.moeNames() + ")");
        if (arch.experts().required && numExperts == 0)
            throw new IllegalArgumentException(architecture + " is a mixture-of-experts architecture: give experts");
        if (arch.experts().deepseek && numLayers <= DEEPSEEK_LEADING_DENSE)
            throw new IllegalArgumentException(architecture + " keeps its first " + DEEPSEEK_LEADING_DENSE + " layer dense: give more layers than that");
        if (arch.qkNorm() == Architecture.QkNorm.WHOLE && qDim() != dim)
            throw new IllegalArgumentException(architecture + "'s q norm is as wide as the model: heads x head dimension must be dim " + dim + ", got " + qDim());
        if (arch.qkNorm() == Architecture.QkNorm.WHOLE && numKvHeads != numHeads)
            throw new IllegalArgumentException(architecture + "'s k norm is as wide as the model: kv heads must equal heads, got " + numKvHeads + " of " + numHeads);
        if (mix == SynthMix.Q4_K_M && type != TensorType.Q4_K)
            throw new IllegalArgumentException("the q4_k_m mix is made of Q4_K, Q5_K and Q6_K tensors; its base type must be q4_k, not " + type.ggmlName());
        if (numExperts < 0 || numExperts > 256 || (numExperts > 0 && (numExpertsUsed < 1 || numExpertsUsed > numExperts)) || (numExperts == 0 && numExpertsUsed != 0))
            throw new IllegalArgumentException("experts " + numExperts + ", used " + numExpertsUsed + ": need 1 <= used <= experts <= 256, or no experts");
        if (!(affinity >= 0 && affinity <= 1)) throw new IllegalArgumentException("affinity " + affinity + " is outside 0..1");
        if (affinity > 0 && numExperts == 0) throw new IllegalArgumentException("affinity needs a mixture-of-experts model");
        if (qDim() % type.blockSize != 0)
            throw new IllegalArgumentException(type.ggmlName() + " needs heads x head dimension to be a multiple of " + type.blockSize + ", got " + qDim());
        if (dim % type.blockSize != 0 || hiddenDim % type.blockSize != 0)
            throw new IllegalArgumentException(type.ggmlName() + " needs dim and ffn to be multiples of " + type.blockSize + ", got dim " + dim + ", ffn " + hiddenDim);
    }

    /**
     * Writes the model to {@code out}, taking every {@code tokenizer.*} key from {@code vocabGguf}. When {@code progress}
     * is not null and the write takes over a second, a progress bar is drawn on it in place.
     */
    public void write(Path vocabGguf, Path out, PrintStream progress) {
        validate();
        Map<String, GgufValue> tokenizer = new LinkedHashMap<>();
        int vocabSize;
        try (GgufFile vocab = GgufFile.open(vocabGguf)) {
            String[] tokens = vocab.getStringArray("tokenizer.ggml.tokens");
            if (tokens == null || tokens.length == 0) throw vocab.fail("has no tokenizer.ggml.tokens to copy the vocabulary from");
            vocabSize = tokens.length;
            vocab.metadata().forEach((k, v) -> { if (k.startsWith("tokenizer.")) tokenizer.put(k, v); });
        }

        Architecture arch = Architecture.find(architecture);
        String p = architecture + ".";
        GgufWriter w = new GgufWriter();
        w.metadata("general.architecture", GgufValue.ofString(architecture));
        w.metadata("general.name", GgufValue.ofString(name));
        w.metadata("general.file_type", GgufValue.ofUint32(fileType(type)));
        w.metadata("general.quantization_version", GgufValue.ofUint32(2));
        w.metadata("general.alignment", GgufValue.ofUint32(32));
        w.metadata(p + "context_length", GgufValue.ofUint32(CONTEXT_LENGTH));
        w.metadata(p + "embedding_length", GgufValue.ofUint32(dim));
        w.metadata(p + "feed_forward_length", GgufValue.ofUint32(hiddenDim));
        w.metadata(p + "block_count", GgufValue.ofUint32(numLayers));
        w.metadata(p + "attention.head_count", GgufValue.ofUint32(numHeads));
        w.metadata(p + "attention.head_count_kv", GgufValue.ofUint32(numKvHeads));
        w.metadata(p + "rope.dimension_count", GgufValue.ofUint32(headDim()));
        if (keyLength > 0) {
            w.metadata(p + "attention.key_length", GgufValue.ofUint32(keyLength));
            w.metadata(p + "attention.value_length", GgufValue.ofUint32(keyLength));
        }
        w.metadata(p + "rope.freq_base", GgufValue.ofFloat32(10000f));
        w.metadata(p + "attention.layer_norm_rms_epsilon", GgufValue.ofFloat32(1e-5f));
        w.metadata(p + "vocab_size", GgufValue.ofUint32(vocabSize));
        if (isMoe()) {
            // The keys llama.cpp's converter writes; feed_forward_length is each expert's width (written again as
            // expert_feed_forward_length where the architecture reads that key).
            w.metadata(p + "expert_count", GgufValue.ofUint32(numExperts));
            w.metadata(p + "expert_used_count", GgufValue.ofUint32(numExpertsUsed));
            if (arch.experts().expertWidthKey) w.metadata(p + "expert_feed_forward_length", GgufValue.ofUint32(hiddenDim));
            if (arch.experts().deepseek) {
                w.metadata(p + "leading_dense_block_count", GgufValue.ofUint32(DEEPSEEK_LEADING_DENSE));
                w.metadata(p + "expert_shared_count", GgufValue.ofUint32(DEEPSEEK_SHARED_EXPERTS));
                w.metadata(p + "expert_weights_scale", GgufValue.ofFloat32(DEEPSEEK_WEIGHTS_SCALE));
            } else if (arch.experts().sharedExpert) {
                w.metadata(p + "expert_shared_feed_forward_length", GgufValue.ofUint32(hiddenDim));
            }
        }
        w.metadata(tokenizer);

        // Shapes are ggml ne: ne0 (the input dimension) first.
        weight(w, "token_embd.weight", -1, dim, vocabSize);
        w.tensor("output_norm.weight", new long[] {dim}, TensorType.F32);
        weight(w, "output.weight", -1, dim, vocabSize);
        for (int i = 0; i < numLayers; i++) {
            String b = "blk." + i + ".";
            w.tensor(b + "attn_norm.weight", new long[] {dim}, TensorType.F32);
            weight(w, b + "attn_q.weight", i, dim, qDim());
            weight(w, b + "attn_k.weight", i, dim, kvDim());
            weight(w, b + "attn_v.weight", i, dim, kvDim());
            if (arch.attentionBias()) {
                w.tensor(b + "attn_q.bias", new long[] {qDim()}, TensorType.F32);
                w.tensor(b + "attn_k.bias", new long[] {kvDim()}, TensorType.F32);
                w.tensor(b + "attn_v.bias", new long[] {kvDim()}, TensorType.F32);
            }
            if (arch.qkNorm() != Architecture.QkNorm.NONE) {
                w.tensor(b + "attn_q_norm.weight", new long[] {arch.qkNorm().weightWidth(numHeads, headDim())}, TensorType.F32);
                w.tensor(b + "attn_k_norm.weight", new long[] {arch.qkNorm().weightWidth(numKvHeads, headDim())}, TensorType.F32);
            }
            weight(w, b + "attn_output.weight", i, qDim(), dim);
            w.tensor(b + "ffn_norm.weight", new long[] {dim}, TensorType.F32);
            if (isMoe() && !(arch.experts().deepseek && i < DEEPSEEK_LEADING_DENSE)) {
                // The router stays F32 (llama-quantize leaves ffn_gate_inp unquantized); experts are 3-D, expert last.
                w.tensor(b + "ffn_gate_inp.weight", new long[] {dim, numExperts}, TensorType.F32);
                weight(w, b + "ffn_gate_exps.weight", i, dim, hiddenDim, numExperts);
                weight(w, b + "ffn_up_exps.weight", i, dim, hiddenDim, numExperts);
                weight(w, b + "ffn_down_exps.weight", i, hiddenDim, dim, numExperts);
                if (arch.experts().sharedExpert) {
                    // Qwen2-MoE's one gated shared expert; DeepSeek's shared experts, ungated, as one of their total width.
                    int shared = arch.experts().deepseek ? DEEPSEEK_SHARED_EXPERTS * hiddenDim : hiddenDim;
                    if (!arch.experts().deepseek) w.tensor(b + "ffn_gate_inp_shexp.weight", new long[] {dim}, TensorType.F32);
                    weight(w, b + "ffn_gate_shexp.weight", i, dim, shared);
                    weight(w, b + "ffn_up_shexp.weight", i, dim, shared);
                    weight(w, b + "ffn_down_shexp.weight", i, shared, dim);
                }
            } else {
                weight(w, b + "ffn_gate.weight", i, dim, hiddenDim);
                weight(w, b + "ffn_up.weight", i, dim, hiddenDim);
                weight(w, b + "ffn_down.weight", i, hiddenDim, dim);
            }
        }
        float[][] routers = isMoe() ? PlantedRouters.generate(seed, numLayers, numExperts, dim, affinity) : null;

        List<GgufTensorInfo> infos = w.tensors();
        Map<String, Integer> index = new HashMap<>();
        long totalBytes = 0;
        for (int i = 0; i < infos.size(); i++) {
            index.put(infos.get(i).name(), i);
            totalBytes += infos.get(i).sizeBytes();
        }
        ProgressBar bar = new ProgressBar(progress, totalBytes);
        w.write(out, (info, dst) -> fill(info, index.get(info.name()), dst, bar, routers));
        bar.finish();
    }

    /** Declares a weight tensor of shape {@code ne} (ggml order) in layer {@code layer} (-1: none), in the type the mix gives it. */
    private void weight(GgufWriter w, String tensor, int layer, long... ne) {
        w.tensor(tensor, ne, mix.typeOf(type, tensor, layer, numLayers, numExperts));
    }

    /** Generates and encodes one tensor row by row, in parallel chunks of rows. */
    private void fill(GgufTensorInfo info, int tensorIndex, MemorySegment dst, ProgressBar bar, float[][] routers) {
        int cols = info.cols();
        int rows = info.rows();
        // Norm weights (1-D) center on 1; biases and the shared expert's gate are 1-D too but center on 0.
        boolean norm = info.dims().length == 1 && info.name().endsWith("norm.weight");
        if (info.name().endsWith(".ffn_gate_inp.weight")) {
            float[] router = routers[Integer.parseInt(info.name().split("\\.")[1])];
            MemorySegment.copy(router, 0, dst, java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0, router.length);
            bar.advance(info.sizeBytes());
            return;
        }
        float std = isMoe() && info.name().equals("token_embd.weight") ? MOE_EMBED_STD : WEIGHT_STD;
        long rowBytes = info.type().byteSize(cols);
        int rowsPerChunk = Math.max(1, CHUNK_ELEMENTS / cols);
        int numChunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        IntStream.range(0, numChunks).parallel().forEach(c -> {
            float[] row = new float[cols];
            int end = Math.min(rows, (c + 1) * rowsPerChunk);
            for (int r = c * rowsPerChunk; r < end; r++) {
                gaussianRow(row, rowSeed(seed, tensorIndex, r), std, norm ? 1f : 0f);
                Quantizer.quantize(info.type(), row, 0, cols, dst, r * rowBytes);
            }
            bar.advance((end - (long) c * rowsPerChunk) * rowBytes);
        });
    }

    /** splitmix64 finaliser over (seed, tensor, row): independent, well-mixed starting states for every row. */
    static long rowSeed(long seed, int tensorIndex, int row) {
        long z = seed + 0x9E3779B97F4A7C15L * (1 + tensorIndex) + 0xD1B54A32D192ED03L * row;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z ^= z >>> 31;
        return z == 0 ? 0x2545F4914F6CDD1DL : z; // xorshift must not start at 0
    }

    /**
     * Fills {@code row} with mean + std * (approximately standard normal) values. Each xorshift64 step gives four
     * 16-bit uniforms whose sum (Irwin-Hall, n = 4) has mean 131070 and standard deviation 65536 / sqrt(3).
     */
    static void gaussianRow(float[] row, long state, float std, float mean) {
        final float center = 4 * 32767.5f;
        final float scale = std / (65536f / (float) Math.sqrt(3));
        long s = state;
        for (int i = 0; i < row.length; i++) {
            s ^= s << 13;
            s ^= s >>> 7;
            s ^= s << 17;
            int sum = (int) (s & 0xFFFF) + (int) ((s >>> 16) & 0xFFFF) + (int) ((s >>> 32) & 0xFFFF) + (int) (s >>> 48);
            row[i] = mean + (sum - center) * scale;
        }
    }

    /** Draws {@code [#####.....]  45%  1.2 / 2.7 GB} with \r, only once a write has run for over a second. */
    static final class ProgressBar {
        private static final long DELAY_NANOS = 1_000_000_000L;
        private static final long REDRAW_NANOS = 200_000_000L;
        private final PrintStream out;
        private final long totalBytes;
        private final long startNanos = System.nanoTime();
        private long doneBytes;
        private long lastDrawNanos;
        private boolean drawn;

        ProgressBar(PrintStream out, long totalBytes) {
            this.out = out;
            this.totalBytes = Math.max(1, totalBytes);
        }

        synchronized void advance(long bytes) {
            doneBytes += bytes;
            if (out == null) return;
            long now = System.nanoTime();
            if (now - startNanos < DELAY_NANOS || now - lastDrawNanos < REDRAW_NANOS) return;
            lastDrawNanos = now;
            draw();
        }

        synchronized void finish() {
            if (out == null || !drawn) return;
            doneBytes = totalBytes;
            draw();
            out.println();
            out.flush();
        }

        private void draw() {
            int width = 30;
            int filled = (int) (width * doneBytes / totalBytes);
            out.printf("\rsynth: [%s%s] %3d%%  %.2f / %.2f GB", "#".repeat(filled), ".".repeat(width - filled),
                    100 * doneBytes / totalBytes, doneBytes / 1e9, totalBytes / 1e9);
            out.flush();
            drawn = true;
        }
    }
}

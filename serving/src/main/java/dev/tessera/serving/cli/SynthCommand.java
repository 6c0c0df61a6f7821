package dev.tessera.serving.cli;

import dev.tessera.kernels.TensorType;
import dev.tessera.models.arch.Architecture;
import dev.tessera.models.synth.SynthMix;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/** {@code tessera synth}: writes a Llama-shaped GGUF with random weights and a real vocabulary, for benchmarks and tests. */
public final class SynthCommand implements Command {
    static final List<TensorType> TYPES = List.of(TensorType.Q8_0, TensorType.Q4_0, TensorType.F16, TensorType.F32,
            TensorType.BF16, TensorType.Q4_1, TensorType.Q5_0, TensorType.Q5_1, TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K);
    private static final Set<String> SHAPE_FLAGS = Set.of("dim", "layers", "heads", "kv-heads", "ffn");
    private static final Set<String> KNOWN = Set.of("preset", "dim", "layers", "heads", "kv-heads", "ffn", "vocab-from",
            "type", "out", "seed", "name", "experts", "experts-used", "affinity", "arch", "head-dim");
    private static final int MAX_DIM = 1 << 16;

    @Override public String name() { return "synth"; }

    @Override public String summary() { return "write a Llama-shaped GGUF with random weights (for benchmarks)"; }

    @Override
    public String usage() {
        return """
                usage: tessera synth --preset NAME --type TYPE --out FILE [--seed S] [--vocab-from VOCAB.gguf] [--name NAME]
                                     [--affinity S] [--arch ARCH] [--head-dim N]
                       tessera synth --dim N --layers N --heads N --kv-heads N --ffn N --vocab-from VOCAB.gguf
                                     --type TYPE --out FILE [--seed S] [--name NAME] [--experts E --experts-used K] [--affinity S]
                                     [--arch ARCH] [--head-dim N]

                Writes a Llama model with random weights (std 0.02, norms 1.0) and the tokenizer of VOCAB.gguf
                (every tokenizer.* key is copied; the vocabulary size is its token count). Prints FILE on stdout.

                  --preset NAME       %s
                                      (tiny: dim 256, 4 layers, 8/4 heads, ffn 768; llama-1b: 2048, 16, 32/8, 8192;
                                       llama-7b: 4096, 32, 32/32, 11008; mixture-of-experts, Mixtral layout:
                                       moe-tiny: 256, 4, 8/4, expert ffn 256, 8 experts top-2;
                                       moe-16x: 512, 12, 8/4, 512, 16 experts top-2;
                                       moe-8x1b: 2048, 16, 32/8, 2816, 8 experts top-2;
                                       qwen3moe-a3b-4l: Qwen3-30B-A3B's layers, 4 of them: qwen3moe, 2048,
                                       32/4 heads of 128, expert ffn 768, 128 experts top-8)
                  --dim N             embedding width (a multiple of --heads)
                  --layers N          transformer blocks
                  --heads N           attention heads
                  --kv-heads N        key/value heads (divides --heads)
                  --ffn N             feed-forward hidden width (each expert's, with --experts)
                  --experts E         experts per layer: a Mixtral-style MoE (llama.expert_count, ffn_*_exps)
                  --experts-used K    experts each token is routed to (llama.expert_used_count)
                  --affinity S        MoE only, 0..1 (default 0): plant inter-layer expert affinity in the routers, so
                                      a token's expert at layer l+1 follows its expert at layer l (under a random
                                      permutation per layer) with strength S; the token embedding has std 1.0
                  --vocab-from FILE   GGUF to take the tokenizer from; presets default to
                                      ../shared/models/%s under the Tessera directory
                  --type TYPE         weight type of the 2-D tensors (norms stay f32): %s;
                                      or q4_k_m: the types llama-quantize's Q4_K_M preset gives each tensor (Q4_K;
                                      Q6_K for output, and for attn_v and ffn_down in some layers; Q5_K attn_output
                                      with 8 experts)
                  --arch ARCH         general.architecture (default llama): %s; the same shape with that
                                      architecture's extra tensors: attention biases (qwen2, qwen2moe), a gated shared
                                      expert as wide as an expert (qwen2moe), q/k norms (qwen3, qwen3moe, olmoe), a
                                      dense first layer and two ungated shared experts, expert_weights_scale 1.5
                                      (deepseek); the MoE ones (%s) need experts, olmoe as many kv
                                      heads as heads
                  --head-dim N        each head's width (default dim / heads; attention.key_length and value_length),
                                      as Qwen3's small models have (16 heads of 128 on a width of 1024)
                  --out FILE          output GGUF (replaced if it exists)
                  --seed S            random seed (default 0); the same seed gives the same bytes
                  --name NAME         general.name (default synth-PRESET or synth-custom)""".formatted(
                SynthPreset.names(), SynthPreset.DEFAULT_VOCAB,
                String.join("|", TYPES.stream().map(TensorType::ggmlName).toList()), Architecture.supportedNames(), Architecture.moeNames());
    }

    @Override
    public int run(List<String> argv) {
        CliArgs args = new CliArgs(argv, KNOWN, Set.of());
        String typeName = args.require("type");
        boolean q4km = typeName.trim().equalsIgnoreCase("q4_k_m");
        TensorType type = q4km ? TensorType.Q4_K : parseType(typeName);
        Path out = Path.of(args.require("out"));
        long seed = args.getLong("seed", 0);

        SynthModel model;
        Path vocab;
        if (args.has("preset")) {
            String presetName = args.get("preset", null);
            SynthPreset preset = SynthPreset.find(presetName);
            if (preset == null) throw new CliArgs.UsageException("unknown preset '" + presetName + "' (presets: " + SynthPreset.names() + ")");
            for (String flag : SHAPE_FLAGS)
                if (args.has(flag)) throw new CliArgs.UsageException("--" + flag + " cannot be combined with --preset");
            model = SynthModel.of(preset, type, seed);
            vocab = args.has("vocab-from") ? Path.of(args.get("vocab-from", null)) : defaultVocab();
        } else {
            for (String flag : SHAPE_FLAGS)
                if (!args.has(flag)) throw new CliArgs.UsageException("give --preset, or all of --dim --layers --heads --kv-heads --ffn (missing --" + flag + ")");
            if (!args.has("vocab-from")) throw new CliArgs.UsageException("--vocab-from is required without --preset");
            if (args.has("experts") != args.has("experts-used")) throw new CliArgs.UsageException("--experts and --experts-used go together");
            model = new SynthModel("synth-custom", args.getInt("dim", 0, 1, MAX_DIM), args.getInt("layers", 0, 1, 1024),
                    args.getInt("heads", 0, 1, 1024), args.getInt("kv-heads", 0, 1, 1024), args.getInt("ffn", 0, 1, 4 * MAX_DIM),
                    type, seed, args.getInt("experts", 0, 1, 256), args.getInt("experts-used", 0, 1, 256), 0f);
            vocab = Path.of(args.get("vocab-from", null));
        }
        if (q4km) model = model.withMix(SynthMix.Q4_K_M);
        if (args.has("name")) model = model.withName(args.get("name", null));
        if (args.has("arch")) model = model.withArchitecture(args.get("arch", null).trim());
        if (args.has("head-dim")) model = model.withHeadDim(args.getInt("head-dim", 0, 2, 1024));
        if (args.has("affinity")) {
            double s = args.getDouble("affinity", 0, 0, 1);
            if (!(s >= 0 && s <= 1)) throw new CliArgs.UsageException("--affinity " + s + " is outside 0..1");
            if (!model.isMoe()) throw new CliArgs.UsageException("--affinity needs a mixture-of-experts model (a moe-* preset or --experts)");
            model = model.withAffinity((float) s);
        }
        try {
            model.validate();
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) throw new CliArgs.UsageException("--out: directory " + parent + " does not exist");
        if (Files.isDirectory(out)) throw new CliArgs.UsageException("--out: " + out + " is a directory");

        System.err.printf("synth: %s, %s, dim %d, %d layers, %d/%d heads, ffn %d, %s%s weights, seed %d -> %s%n", model.name(),
                model.architecture(), model.dim(), model.numLayers(), model.numHeads(), model.numKvHeads(), model.hiddenDim(),
                model.isMoe() ? model.numExperts() + " experts (top-" + model.numExpertsUsed() + ", affinity " + model.affinity() + "), " : "",
                model.mix().typeName(type), seed, out);
        model.write(vocab, out, System.err);
        System.out.println(out);
        return 0;
    }

    static TensorType parseType(String name) {
        String n = name.trim().toLowerCase(Locale.ROOT);
        for (TensorType t : TYPES) if (t.ggmlName().equals(n)) return t;
        throw new CliArgs.UsageException("unknown --type '" + name + "' (types: "
                + String.join(", ", TYPES.stream().map(TensorType::ggmlName).toList()) + ", q4_k_m)");
    }

    /** The presets' vocabulary: ../shared/models/… next to the Tessera directory ({@code tessera.home}, else the current one). */
    static Path defaultVocab() {
        return Path.of(System.getProperty("tessera.home", ".")).resolve("../shared/models").resolve(SynthPreset.DEFAULT_VOCAB).normalize();
    }
}

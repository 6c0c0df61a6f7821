package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.DeviceSelector;
import dev.tessera.kernels.TensorType;
import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.cpu.CpuTopology;
import dev.tessera.models.synth.SynthMix;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import dev.tessera.serving.cli.CliArgs;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/** The check's options, and what every section needs from them: a backend for the device, synthetic models. */
final class CheckSetup {
    static final List<String> SECTIONS = List.of("device", "parity", "stories", "paged", "engine", "collective", "serve", "offload", "moe", "decode", "bandwidth", "torch");

    final boolean quick;
    final boolean cpuOnly;
    final Set<String> sections;
    final Path modelsDir;
    final Path workDir;
    final int numThreads;
    final String device;
    final Path torchScript;

    CheckSetup(List<String> argv) {
        CliArgs args = new CliArgs(argv, Set.of("sections", "models", "work-dir", "threads", "device", "torch-script"), Set.of("quick", "cpu-only"));
        quick = args.has("quick");
        cpuOnly = args.has("cpu-only");
        sections = new LinkedHashSet<>();
        for (String s : args.get("sections", String.join(",", SECTIONS)).split(",")) {
            if (s.isBlank()) continue;
            if (!SECTIONS.contains(s.trim())) throw new CliArgs.UsageException("--sections takes " + String.join(",", SECTIONS) + "; got '" + s + "'");
            sections.add(s.trim());
        }
        modelsDir = Path.of(args.get("models", defaultModelsDir()));
        workDir = Path.of(args.get("work-dir", System.getProperty("java.io.tmpdir") + "/tessera-gpu-check"));
        numThreads = args.getInt("threads", defaultThreads(), 1, 1024);
        device = args.get("device", "cuda");
        torchScript = Path.of(args.get("torch-script", System.getProperty("tessera.home", ".") + "/scripts/gpu-torch-peer.py"));
    }

    /** The backend under test: the CUDA device, or in the dry run a second CPU backend with half the threads. */
    Backend deviceBackend() {
        if (cpuOnly) return new CpuBackend(Math.max(1, numThreads / 2));
        return DeviceSelector.create(DeviceSelector.parse(device), numThreads, System.err);
    }

    /** A synthetic model in the work dir, written once and reused by later runs. */
    Path synth(SynthPreset preset, TensorType type) throws IOException {
        return synth(preset, type, SynthMix.PURE);
    }

    /** As {@link #synth(SynthPreset, TensorType)}, each tensor in the type {@code mix} gives it. */
    Path synth(SynthPreset preset, TensorType type, SynthMix mix) throws IOException {
        Files.createDirectories(workDir);
        Path out = workDir.resolve("synth-" + preset.presetName + "-" + mix.typeName(type) + ".gguf");
        if (Files.isRegularFile(out) && Files.size(out) > 0) {
            log("synth: reusing %s", out);
            return out;
        }
        Path vocab = modelsDir.resolve(SynthPreset.DEFAULT_VOCAB);
        long t0 = System.nanoTime();
        Path partial = out.resolveSibling(out.getFileName() + ".partial");
        SynthModel.of(preset, type, 42).withMix(mix).write(vocab, partial, System.err);
        Files.move(partial, out, StandardCopyOption.REPLACE_EXISTING);
        log("synth: wrote %s (%.2f GB) in %.1f s", out.getFileName(), Files.size(out) / 1e9, (System.nanoTime() - t0) / 1e9);
        return out;
    }

    static int argmax(float[] x) {
        return argmax(x, 0, x.length);
    }

    static int argmax(float[] x, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (x[offset + i] > x[offset + best]) best = i;
        return best;
    }

    private static String defaultModelsDir() {
        String configured = System.getProperty("tessera.models");
        if (configured != null) return configured;
        String home = System.getProperty("tessera.home", ".");
        for (String candidate : List.of(home + "/models", home + "/../shared/models", "../shared/models"))
            if (Files.isRegularFile(Path.of(candidate, "stories260K.gguf"))) return candidate;
        return home + "/models";
    }

    private static int defaultThreads() {
        try {
            return CpuTopology.physicalCores();
        } catch (Throwable e) {
            return Runtime.getRuntime().availableProcessors();
        }
    }
}

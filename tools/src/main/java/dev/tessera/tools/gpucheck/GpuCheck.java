package dev.tessera.tools.gpucheck;

import dev.tessera.serving.cli.CliArgs;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;

import static dev.tessera.tools.gpucheck.CheckReport.log;
import static dev.tessera.tools.gpucheck.CheckReport.oneLine;

/**
 * The GPU host check, run by {@code scripts/gpu-check.sh} (and {@code tessera gpu-check}): device facts, op-by-op
 * parity of the CUDA backend against the CPU backend, stories260K greedy ids against the reference, paged KV caches,
 * the batching engine, a mixture-of-experts model's routing and greedy ids against the CPU and its decode speed, llama-1b decode and prefill throughput at batch 1 and 16, the device-to-device copy roofline,
 * and a PyTorch peer. Every section catches its own failure and the run goes on, so one (scarce) GPU session yields as
 * much as it can; one summary table ends stdout. {@code --cpu-only} runs the same logic against a second CPU backend
 * with tiny models, so it can be exercised without a GPU.
 */
public final class GpuCheck {
    private final CheckSetup setup;
    private final CheckReport report = new CheckReport();

    GpuCheck(List<String> argv) {
        setup = new CheckSetup(argv);
    }

    public static void main(String[] argv) {
        if (Arrays.asList(argv).contains("--help")) {
            System.out.println(usage());
            return;
        }
        GpuCheck check;
        try {
            check = new GpuCheck(Arrays.asList(argv));
        } catch (CliArgs.UsageException e) {
            System.err.println("gpu-check: " + e.getMessage());
            System.exit(2);
            return;
        }
        System.exit(check.run());
    }

    static String usage() {
        return """
                usage: gpu-check [--quick] [--cpu-only] [--sections LIST] [--models DIR] [--work-dir DIR] [--threads N]
                                 [--device cuda|cuda:N] [--torch-script FILE]

                  --sections LIST   comma-separated subset of device,parity,stories,paged,engine,collective,serve,offload,moe,decode,bandwidth,torch (default all)
                  --quick           decode: llama-1b in F16 and Q4_K_M only (no Q4_0, Q6_K, llama-7b); fewer steps and parity cases, a 256 MiB copy probe
                  --cpu-only        dry run: a second CPU backend stands in for CUDA, tiny synthetic models
                  --models DIR      folder with stories260K.gguf, its reference JSON and llama.cpp-vocab/
                  --work-dir DIR    where synthetic models are written and reused (default $TMPDIR/tessera-gpu-check)""";
    }

    /** The rows so far (for tests). */
    List<CheckReport.Row> rows() {
        return report.rows();
    }

    /** Runs the chosen sections in order; exit status 1 when any row failed. */
    int run() {
        long t0 = System.nanoTime();
        log("gpu-check: %s, sections %s%s, models %s, %d CPU threads", setup.cpuOnly ? "CPU-only dry run" : "device " + setup.device,
                String.join(",", setup.sections), setup.quick ? " (quick)" : "", setup.modelsDir, setup.numThreads);
        DecodeSection decode = new DecodeSection(setup, report);
        List<CheckSection> sections = List.of(new DeviceSection(setup, report), new ParitySection(setup, report),
                new StoriesSection(setup, report), new PagedSection(setup, report), new EngineSection(setup, report), new CollectiveSection(setup, report), new ServeSection(setup, report), new OffloadSection(setup, report), new MoeSection(setup, report), decode,
                new BandwidthSection(setup, report, decode), new TorchSection(setup, report));
        for (CheckSection section : sections) if (setup.sections.contains(section.name())) runSection(section);
        report.row("total", "wall time", String.format(Locale.ROOT, "%.1f s", (System.nanoTime() - t0) / 1e9), "");
        report.printSummary();
        return report.failed() ? 1 : 0;
    }

    private void runSection(CheckSection section) {
        long t0 = System.nanoTime();
        log("== %s ==", section.name());
        try {
            section.run();
        } catch (Throwable e) {
            String message = e.getClass().getSimpleName() + ": " + e.getMessage();
            log("gpu-check: section %s failed: %s", section.name(), message);
            StackTraceElement[] trace = e.getStackTrace();
            for (int i = 0; i < Math.min(6, trace.length); i++) log("    at %s", trace[i]);
            report.row(section.name(), "section", oneLine(message), "FAIL");
        }
        log("   (%s took %.1f s)", section.name(), (System.nanoTime() - t0) / 1e9);
    }
}

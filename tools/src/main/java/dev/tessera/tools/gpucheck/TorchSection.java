package dev.tessera.tools.gpucheck;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/** The PyTorch peer: {@code scripts/gpu-torch-peer.py} times the same llama-1b F16 decode step, eager and as a CUDA graph. */
final class TorchSection extends CheckSection {
    TorchSection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "torch";
    }

    @Override
    void run() throws IOException, InterruptedException {
        Path python = onPath("python3");
        if (python == null) {
            report.row("torch", "peer", "no python3 on PATH", "SKIP");
            return;
        }
        if (!Files.isRegularFile(torchScript)) throw new IllegalStateException(torchScript + " not found");
        List<String> cmd = new ArrayList<>(List.of(python.toString(), torchScript.toString()));
        if (quick) cmd.add("--quick");
        if (cpuOnly) cmd.addAll(List.of("--device", "cpu", "--tiny"));
        log("torch: %s", String.join(" ", cmd));
        Process process = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(300, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new IllegalStateException("gpu-torch-peer.py ran past 300 s");
        }
        String json = out.lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElse("");
        log("torch: %s", json.isEmpty() ? "(no JSON) exit " + process.exitValue() : json);
        Matcher error = Pattern.compile("\"error\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        if (error.find()) {
            report.row("torch", "peer", error.group(1), "SKIP");
            return;
        }
        for (String key : List.of("decode_tokens_per_s", "decode_tokens_per_s_cuda_graph")) {
            Matcher m = Pattern.compile("\"" + key + "\"\\s*:\\s*([0-9.eE+-]+)").matcher(json);
            if (m.find()) report.row("torch", "f16 " + key.replace("decode_tokens_per_s", "decode b1").replace("_", " "),
                    String.format(Locale.ROOT, "%.1f tok/s", Double.parseDouble(m.group(1))), "ok");
        }
        if (process.exitValue() != 0) report.row("torch", "peer", "exit " + process.exitValue(), "FAIL");
    }


    private static Path onPath(String program) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (dir.isEmpty()) continue;
            Path p = Path.of(dir, program);
            if (Files.isExecutable(p)) return p;
        }
        return null;
    }
}

package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.conformance.BackendConformance;
import dev.tessera.serving.cli.CliArgs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU check's dry run (a second CPU backend stands in for CUDA) on the real stories260K files: the parity section
 * runs the whole quick conformance suite, one row per case, and the stories and paged sections match the reference.
 */
class GpuCheckTest {

    @Test
    void dryRunOfParityStoriesAndPagedPasses() {
        GpuCheck check = new GpuCheck(List.of("--cpu-only", "--quick", "--sections", "parity,stories,paged", "--threads", "2"));
        int status = check.run();
        List<CheckReport.Row> rows = check.rows();
        List<CheckReport.Row> failed = rows.stream().filter(r -> r.status().equals("FAIL")).toList();
        assertTrue(failed.isEmpty(), "failed rows: " + failed);
        assertEquals(0, status);
        long parityRows = rows.stream().filter(r -> r.section().equals("parity")).count();
        assertEquals(BackendConformance.cases(true).size(), parityRows);
        assertEquals(3, rows.stream().filter(r -> r.section().equals("stories") && r.status().equals("ok")).count());
        assertTrue(rows.stream().anyMatch(r -> r.section().equals("paged") && r.item().startsWith("paged f16 vs CPU paged f16") && r.status().equals("ok")), rows.toString());
    }

    @Test
    void dryRunOfMoeComparesRoutingAndGreedyIdsAndSkipsTheTiming() {
        GpuCheck check = new GpuCheck(List.of("--cpu-only", "--quick", "--sections", "moe", "--threads", "2"));
        int status = check.run();
        List<CheckReport.Row> rows = check.rows().stream().filter(r -> r.section().equals("moe")).toList();
        assertEquals(0, status, rows.toString());
        for (String item : List.of("routing", "greedy ids", "prompt logits"))
            assertTrue(rows.stream().anyMatch(r -> r.item().startsWith("moe-tiny f16 " + item) && r.status().equals("ok")), item + ": " + rows);
        assertTrue(rows.stream().anyMatch(r -> r.item().startsWith("moe-tiny q8_0 decode b1") && r.status().equals("SKIP")), rows.toString());
    }

    @Test
    void dryRunOfDecodeMeasuresEachModelAndPutsItAgainstTheRoofline(@TempDir Path work) {
        GpuCheck check = new GpuCheck(List.of("--cpu-only", "--quick", "--sections", "decode,bandwidth", "--threads", "2",
                "--work-dir", work.toString()));
        assertEquals(0, check.run(), check.rows().toString());
        List<CheckReport.Row> rows = check.rows();
        // --quick: F16 and llama-quantize's Q4_K_M mix, each with a decode row and a roofline row.
        for (String model : List.of("tiny f16", "tiny q4_k_m")) {
            assertTrue(rows.stream().anyMatch(r -> r.section().equals("decode") && r.item().equals(model + " decode b1") && r.status().equals("ok")), model + ": " + rows);
            assertTrue(rows.stream().anyMatch(r -> r.section().equals("bandwidth") && r.item().equals(model + " decode b1 / roofline")
                    && r.value().matches("\\d+% \\(.*") && r.status().equals("ok")), model + ": " + rows);
        }
        assertTrue(Files.isRegularFile(work.resolve("synth-tiny-q4_k_m.gguf")), "the mix's file is named after it");
    }

    @Test
    void collectiveDryRunSkipsNcclAndTheTensorParallelStepWithTheReason() {
        GpuCheck check = new GpuCheck(List.of("--cpu-only", "--sections", "collective", "--threads", "1"));
        assertEquals(0, check.run());
        List<CheckReport.Row> rows = check.rows().stream().filter(r -> r.section().equals("collective")).toList();
        assertEquals(2, rows.size(), rows.toString());
        assertTrue(rows.stream().allMatch(r -> r.status().equals("SKIP") && r.value().startsWith("skipped: no CUDA device")), rows.toString());
        assertTrue(rows.stream().anyMatch(r -> r.item().startsWith("tensor-parallel step over NCCL")), rows.toString());
    }

    @Test
    void anUnknownSectionIsAUsageError() {
        CliArgs.UsageException e = assertThrows(CliArgs.UsageException.class, () -> new GpuCheck(List.of("--sections", "device,warp")));
        assertTrue(e.getMessage().contains("'warp'"), e.getMessage());
    }

    @Test
    void aFailingSectionBecomesOneFailRowAndTheRunGoesOn() {
        // No models here: stories fails on the missing file, and the device section (dry run) still reports.
        GpuCheck check = new GpuCheck(List.of("--cpu-only", "--sections", "device,stories", "--models", "/nonexistent-models"));
        assertEquals(1, check.run());
        List<CheckReport.Row> rows = check.rows();
        assertTrue(rows.stream().anyMatch(r -> r.section().equals("stories") && r.item().equals("section") && r.status().equals("FAIL")
                && r.value().contains("stories260K")), rows.toString());
        assertTrue(rows.stream().anyMatch(r -> r.section().equals("device") && r.status().equals("SKIP")), rows.toString());
    }
}

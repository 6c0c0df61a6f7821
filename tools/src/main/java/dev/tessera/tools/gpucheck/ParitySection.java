package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.conformance.BackendConformance;
import dev.tessera.kernels.conformance.ConformanceCase;
import dev.tessera.kernels.cpu.CpuBackend;

import java.util.List;

import static dev.tessera.tools.gpucheck.CheckReport.log;

/**
 * Every Backend op on the device against the CPU backend: the kernels' conformance suite ({@link BackendConformance}),
 * one row per case with its max absolute and relative error. Formats the device has no kernels for are SKIP rows.
 */
final class ParitySection extends CheckSection {
    ParitySection(CheckSetup setup, CheckReport report) {
        super(setup, report);
    }

    @Override
    String name() {
        return "parity";
    }

    @Override
    void run() {
        List<ConformanceCase> cases = BackendConformance.cases(quick);
        try (Backend reference = new CpuBackend(numThreads); Backend underTest = deviceBackend()) {
            log("parity: %d cases, %s against %s", cases.size(), underTest.name(), reference.name());
            BackendConformance.run(cases, reference, underTest, r -> {
                log("parity %s", r);
                report.row("parity", r.name(), CheckReport.oneLine(r.value()), r.status());
            });
        }
    }
}

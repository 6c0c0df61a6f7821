package dev.tessera.tools.gpucheck;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.TensorType;
import dev.tessera.models.synth.SynthMix;
import dev.tessera.models.synth.SynthPreset;

import java.io.IOException;
import java.nio.file.Path;

/**
 * One section of the GPU check. Sections read the options as fields of their own (the same names as the flags) and
 * add rows to the shared report; a section that throws gets one FAIL row and the run goes on.
 */
abstract class CheckSection {
    final CheckSetup setup;
    final CheckReport report;
    final boolean quick, cpuOnly;
    final Path modelsDir, workDir, torchScript;
    final int numThreads;
    final String device;

    CheckSection(CheckSetup setup, CheckReport report) {
        this.setup = setup;
        this.report = report;
        this.quick = setup.quick;
        this.cpuOnly = setup.cpuOnly;
        this.modelsDir = setup.modelsDir;
        this.workDir = setup.workDir;
        this.torchScript = setup.torchScript;
        this.numThreads = setup.numThreads;
        this.device = setup.device;
    }

    /** As {@code --sections} spells it. */
    abstract String name();

    abstract void run() throws Exception;

    Backend deviceBackend() {
        return setup.deviceBackend();
    }

    Path synth(SynthPreset preset, TensorType type) throws IOException {
        return setup.synth(preset, type);
    }

    Path synth(SynthPreset preset, TensorType type, SynthMix mix) throws IOException {
        return setup.synth(preset, type, mix);
    }
}

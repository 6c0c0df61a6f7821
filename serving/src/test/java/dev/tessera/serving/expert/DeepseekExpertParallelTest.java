package dev.tessera.serving.expert;

import dev.tessera.kernels.TensorType;
import dev.tessera.models.arch.ExpertParallelFeedForward.Mode;
import dev.tessera.models.synth.SynthModel;
import dev.tessera.models.synth.SynthPreset;
import dev.tessera.scheduler.placement.Placement;
import dev.tessera.serving.CliProcesses;
import dev.tessera.serving.GreedyParity;
import dev.tessera.serving.ServingConfig;
import dev.tessera.serving.TestServer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A DeepSeek-MoE model (a dense first layer, ungated shared experts, a weights scale) served with its experts spread
 * over a real {@code tessera expert-worker} process: 16 concurrent greedy requests give each prompt's text alone, in
 * ExFlow's coherent mode and in the two-all-to-all baseline. The dense layer runs on every device for its own rows.
 */
class DeepseekExpertParallelTest {
    @TempDir
    Path tmp;

    @Test
    void bothModesOnTwoDevicesMatchOneProcess() throws Exception {
        Path model = tmp.resolve("deepseek-q8_0.gguf");
        SynthModel.of(SynthPreset.MOE_TINY, TensorType.Q8_0, 5).withArchitecture("deepseek")
                .write(TestServer.modelPath().getParent().resolve(SynthPreset.DEFAULT_VOCAB), model, null);
        // Served as "moe", the name ExpertParallelServingTest.expertParallel gives it.
        List<String> alone = GreedyParity.alone(model, "moe");
        int port = CliProcesses.freePortOutsideEphemeralRange();
        Process worker = ExpertParallelServingTest.startWorker(model, port);
        try {
            for (Mode mode : Mode.values()) {
                try (TestServer server = TestServer.unloaded(new ServingConfig("moe", null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
                    server.context.ready(ExpertParallelServingTest.expertParallel(model, List.of(port), Placement.contiguous(4, 8, 2, 1), mode, 64));
                    String what = "deepseek, " + mode.flag + " on 2 devices";
                    GreedyParity.assertSameTexts(alone, GreedyParity.concurrently(server, "moe", 16), what);
                    assertEquals(0, server.metric("tessera_kv_cache_usage_perc"), what + ": KV blocks held after every request ended");
                }
            }
        } finally {
            worker.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        }
    }
}

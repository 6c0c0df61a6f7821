package dev.tessera.serving.cli;

import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.serving.ServedModel;
import dev.tessera.serving.ServingConfig;
import dev.tessera.serving.TestServer;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ServerWarmUpTest {
    @Test
    void warmUpRunsItsRequestsToTheEndAndLeavesNoTraceInTheMetrics() throws Exception {
        ServedModel served = ServedModel.load(TestServer.modelPath(), TestServer.MODEL_NAME, new CpuBackend(1), 64, 16);
        ServerWarmUp.Summary summary = ServerWarmUp.run(served.engine(), served.tokenizer().vocabSize(), 16);
        assertEquals(1 + ServerWarmUp.BATCH, summary.requests());
        assertEquals(0, served.engine().numRunning());
        assertEquals(0, served.engine().numWaiting());
        assertTrue(served.engine().stats().prefixQueryTokens() >= ServerWarmUp.LONG_PROMPT, "the warm-up prompts went through the engine");

        try (TestServer server = TestServer.unloaded(new ServingConfig(TestServer.MODEL_NAME, null, ServingConfig.DEFAULT_MAX_BODY_BYTES))) {
            server.context.ready(served);
            assertEquals(0, server.metric("tessera_prefix_cache_queries_total"), "counters start when the server is ready");
            assertEquals(0, server.metric("tessera_generation_tokens_total"));
            assertEquals(0, server.metric("tessera_kv_cache_usage_perc"), "warm-up sequences freed their blocks");
            assertEquals(200, server.post("/v1/completions",
                    "{\"model\":\"stories260K\",\"prompt\":\"Once upon a time\",\"max_tokens\":4,\"temperature\":0}").statusCode());
            assertEquals(4, server.metric("tessera_generation_tokens_total"));
        }
    }

    @Test
    void oneSequenceAtATimeAndATinyQueueStillWarmUp() throws Exception {
        try (ServedModel served = ServedModel.load(TestServer.modelPath(), TestServer.MODEL_NAME, new CpuBackend(1), 1, 1)) {
            assertEquals(2, ServerWarmUp.run(served.engine(), served.tokenizer().vocabSize(), 1).requests());
        }
    }
}

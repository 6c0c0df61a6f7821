package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.scheduler.engine.BatchingEngine;
import dev.tessera.scheduler.engine.EngineRequest;
import dev.tessera.scheduler.engine.PagedKvEngineTest;
import dev.tessera.scheduler.engine.RequestHandle;
import dev.tessera.scheduler.engine.SingleRequestTest;
import dev.tessera.scheduler.engine.TokenEvent;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A worker process killed while eight requests stream on the batching engine: every one of them ends with an error
 * naming the worker (none hangs), every KV block comes back, requests fail fast while it is down, and once it is back
 * the same prompts give the same tokens.
 */
class TensorParallelFaultTest {
    @TempDir
    Path temp;

    @Test
    void killedWorkerFailsEveryRequestInFlightAndTheMasterReconnectsWhenItIsBack() throws Exception {
        Path model = TensorParallelEngineTest.MODELS.resolve("stories260K.gguf");
        int[] weights = {1, 1, 2};
        int[][] prompts = new int[8][];
        int[][] reference = new int[8][];
        try (LoadedModel m = ModelLoader.load(model, new CpuBackend(1), 64)) {
            for (int i = 0; i < prompts.length; i++) {
                prompts[i] = m.tokenizer().encode("Once upon a time " + "there was ".repeat(i), true, false);
                reference[i] = SingleRequestTest.greedyAlone(m.model(), prompts[i], 40, t -> false);
            }
        }
        Path shards = Files.createDirectories(temp.resolve("shards"));
        try (GgufFile f = GgufFile.open(model);
             WorkerProcesses workers = new WorkerProcesses(shards, 2)) {
            ModelConfig c = ModelConfig.fromGguf(f);
            ShardPlan plan = TensorParallelRunner.plan(f, c, weights);
            ShardWriter.writeAll(f, c, plan, shards, null);
            workers.start(0);
            workers.start(0);
            try (TensorParallelRunner runner = new TensorParallelRunner(f, c, new CpuBackend(1), workers.addresses(2), plan,
                    CollectiveKind.STAR, 2, 64, 16, Duration.ofSeconds(10), null, List.of());
                 BatchingEngine engine = TensorParallelEngineTest.engine(runner, 0)) {
                int free = engine.numFreeKvBlocks();
                assertArrayEquals(reference[0], TensorParallelEngineTest.generate(engine, prompts[0], 40));

                // Long requests in flight; the worker dies once the first has streamed a few tokens.
                List<RequestHandle> handles = new ArrayList<>();
                for (int[] p : prompts) handles.add(engine.submit(new EngineRequest("long", p, SamplingParams.greedy(), 2000, t -> false, false)));
                for (int i = 0; i < 5; i++) assertInstanceOf(TokenEvent.Token.class, handles.getFirst().poll(30, TimeUnit.SECONDS));
                workers.kill(1);
                String victim = "worker 127.0.0.1:" + workers.address(1).getPort() + " (rank 2)";
                for (RequestHandle h : handles) {
                    TokenEvent e;
                    do {
                        e = h.poll(30, TimeUnit.SECONDS);
                        if (e == null) throw new AssertionError("a request hung after the worker died");
                    } while (e instanceof TokenEvent.Token);
                    TokenEvent.Failed failed = assertInstanceOf(TokenEvent.Failed.class, e, "a request in flight did not fail");
                    assertTrue(failed.deviceUnavailable(), failed.message());
                    assertTrue(failed.message().contains(victim), failed.message());
                }
                PagedKvEngineTest.assertNoLeak(engine);
                assertEquals(free, engine.numFreeKvBlocks(), "the pool's free count returns to its start");

                long t0 = System.nanoTime();
                RequestHandle down = engine.submit(new EngineRequest("down", prompts[0], SamplingParams.greedy(), 40, t -> false, false));
                TokenEvent.Failed failed = assertInstanceOf(TokenEvent.Failed.class, down.poll(30, TimeUnit.SECONDS));
                long millis = (System.nanoTime() - t0) / 1_000_000;
                assertTrue(failed.message().contains(victim + " is unreachable"), failed.message());
                assertTrue(millis < 3000, "failing while the worker is down took " + millis + " ms");

                workers.restart(1);
                for (int i = 0; i < 2; i++)
                    assertArrayEquals(reference[i], TensorParallelEngineTest.generate(engine, prompts[i], 40), "after the worker came back, prompt " + i);
                PagedKvEngineTest.assertNoLeak(engine);
            }
        }
    }
}

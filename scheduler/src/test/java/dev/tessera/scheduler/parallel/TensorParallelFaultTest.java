package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.cpu.CpuBackend;
import dev.tessera.kernels.collective.AllReduceKind;
import dev.tessera.models.LoadedModel;
import dev.tessera.models.ModelLoader;
import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;
import dev.tessera.models.sample.Sampler;
import dev.tessera.models.sample.SamplingParams;
import dev.tessera.scheduler.engine.SequenceGenerator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A worker process killed mid-generation: that request fails naming it, the master fails fast, then reconnects. */
class TensorParallelFaultTest {
    @TempDir
    Path temp;

    @Test
    void killedWorkerFailsTheRequestAndTheMasterReconnectsWhenItIsBack() throws Exception {
        Path model = TensorParallelModelTest.MODELS.resolve("stories260K.gguf");
        int[] weights = {1, 1, 2};
        int[] prompt, reference;
        try (LoadedModel m = ModelLoader.load(model, new CpuBackend(1), 64)) {
            prompt = m.tokenizer().encode("Once upon a time", true, false);
            reference = new SequenceGenerator(m.model()).generate(prompt, new Sampler(SamplingParams.greedy(), m.config().vocabSize()),
                    40, t -> false, t -> true).tokens();
        }
        Path shards = Files.createDirectories(temp.resolve("shards"));
        try (GgufFile f = GgufFile.open(model);
             WorkerProcesses workers = new WorkerProcesses(shards, 2)) {
            ModelConfig c = ModelConfig.fromGguf(f);
            ShardPlan plan = TensorParallelModel.plan(f, c, weights);
            ShardWriter.writeAll(f, c, plan, shards, null);
            workers.start(0);
            workers.start(0);
            try (TensorParallelModel tp = new TensorParallelModel(f, c, new CpuBackend(1), workers.addresses(2), plan,
                    AllReduceKind.STAR, 2, 64, Duration.ofSeconds(10))) {
                SequenceGenerator gen = new SequenceGenerator(tp);
                Sampler greedy = new Sampler(SamplingParams.greedy(), c.vocabSize());
                assertArrayEquals(reference, gen.generate(prompt, greedy, 40, t -> false, t -> true).tokens());

                String victim = "worker 127.0.0.1:" + workers.address(1).getPort() + " (rank 2)";
                AtomicInteger seen = new AtomicInteger();
                var killed = assertThrows(TensorParallelModel.TensorParallelException.class, () -> gen.generate(prompt, greedy, 40, t -> false, t -> {
                    if (seen.incrementAndGet() == 5) {
                        try { workers.kill(1); } catch (InterruptedException e) { throw new IllegalStateException(e); }
                    }
                    return true;
                }));
                assertTrue(killed.getMessage().contains(victim), killed.getMessage());
                assertTrue(seen.get() >= 5 && seen.get() < 40, "failed after " + seen.get() + " tokens");

                long t0 = System.nanoTime();
                var down = assertThrows(TensorParallelModel.TensorParallelException.class, () -> gen.generate(prompt, greedy, 40, t -> false, t -> true));
                long millis = (System.nanoTime() - t0) / 1_000_000;
                assertTrue(down.getMessage().contains(victim + " is unreachable"), down.getMessage());
                assertTrue(millis < 3000, "failing while the worker is down took " + millis + " ms");

                workers.restart(1);
                assertArrayEquals(reference, gen.generate(prompt, greedy, 40, t -> false, t -> true).tokens(), "after the worker came back");
            }
        }
    }
}

package dev.tessera.serving.cli;

import dev.tessera.kernels.collective.CollectiveKind;
import dev.tessera.kernels.cuda.NcclCollective;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code --collective}: auto is left to the group set-up; nccl without libnccl is refused at once in one line. */
class TensorParallelOptionsTest {

    @Test
    void autoStarAndRingParseAndAnUnknownValueNamesTheChoices() {
        assertEquals(CollectiveKind.AUTO, TensorParallelOptions.collective("auto"));
        assertEquals(CollectiveKind.STAR, TensorParallelOptions.collective("STAR"));
        assertEquals(CollectiveKind.RING, TensorParallelOptions.collective(" ring"));
        var e = assertThrows(IllegalArgumentException.class, () -> TensorParallelOptions.collective("mpi"));
        assertEquals("unknown --collective 'mpi', expected auto|star|ring|nccl", e.getMessage());
    }

    @Test
    void ncclWithoutTheLibraryIsOneLineNamingIt() throws Exception {
        Assumptions.assumeFalse(NcclCollective.libraryProblem().isEmpty(), "libnccl loads here; the missing-library path is not reachable");
        var e = assertThrows(IllegalArgumentException.class, () -> TensorParallelOptions.collective("nccl"));
        assertTrue(e.getMessage().startsWith("--collective nccl: NCCL unavailable: libnccl.so.2 not found"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());

        // As a user meets it: usage error, exit 2, one line, before any worker is contacted (none listens at port 9).
        CommandLineTest.Run r = CommandLineTest.tessera("generate", "--model", CommandLineTest.models().resolve("stories260K.gguf").toString(),
                "--prompt", "Once", "--max-tokens", "4", "--device", "cpu", "--tp-workers", "127.0.0.1:9", "--collective", "nccl");
        assertEquals(2, r.exitCode(), r.stderr());
        // The error is one line (the JVM's warnings and the --help hint aside).
        List<String> errors = r.stderr().lines().filter(l -> l.startsWith("tessera generate:")).toList();
        assertEquals(1, errors.size(), r.stderr());
        assertTrue(errors.getFirst().startsWith("tessera generate: --collective nccl: NCCL unavailable: libnccl.so.2 not found"), r.stderr());
    }
}

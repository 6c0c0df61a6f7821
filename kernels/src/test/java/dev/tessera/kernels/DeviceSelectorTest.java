package dev.tessera.kernels;

import dev.tessera.bindings.cuda.cuda_h;
import dev.tessera.kernels.DeviceSelector.Device;
import dev.tessera.kernels.DeviceSelector.Kind;
import dev.tessera.kernels.cpu.CpuBackend;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DeviceSelectorTest {

    @Test
    void parsesEveryForm() {
        assertEquals(new Device(Kind.AUTO, 0), DeviceSelector.parse("auto"));
        assertEquals(new Device(Kind.CPU, 0), DeviceSelector.parse("cpu"));
        assertEquals(new Device(Kind.CUDA, 0), DeviceSelector.parse("cuda"));
        assertEquals(new Device(Kind.CUDA, 3), DeviceSelector.parse("cuda:3"));
        assertEquals("cuda:3", DeviceSelector.parse("cuda:3").toString());
        for (String bad : new String[] {"gpu", "cuda:", "cuda:-1", "cuda:x", "", "CPU"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceSelector.parse(bad));
            assertEquals("--device must be auto, cpu, cuda or cuda:N, got '" + bad + "'", e.getMessage());
        }
    }

    @Test
    void autoWithoutCudaUsesTheCpuAndSaysWhyInOneLine() {
        Assumptions.assumeFalse(cuda_h.libraryAvailable(), "libcuda.so.1 is installed here; the CPU fallback cannot be seen");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (Backend backend = DeviceSelector.create(DeviceSelector.parse("auto"), 2, new PrintStream(log, true, StandardCharsets.UTF_8))) {
            assertInstanceOf(CpuBackend.class, backend);
            assertEquals(2, ((CpuBackend) backend).numThreads());
        }
        String line = log.toString(StandardCharsets.UTF_8);
        assertTrue(line.startsWith("tessera: no CUDA device (CUDA unavailable: libcuda.so.1 not found (looked in: "), line);
        assertTrue(line.endsWith("); using the CPU\n"), line);
        assertEquals(1, line.split("\n").length, line);
    }

    @Test
    void cudaWithoutTheDriverIsTheClearError() {
        Assumptions.assumeFalse(cuda_h.libraryAvailable(), "libcuda.so.1 is installed here; the missing-driver error cannot be seen");
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        for (String spec : new String[] {"cuda", "cuda:1"}) {
            DeviceSelector.DeviceUnavailableException e = assertThrows(DeviceSelector.DeviceUnavailableException.class,
                    () -> DeviceSelector.create(DeviceSelector.parse(spec), 1, new PrintStream(log)));
            assertTrue(e.getMessage().startsWith("CUDA unavailable: libcuda.so.1 not found (looked in: "), e.getMessage());
        }
        assertEquals("", log.toString(StandardCharsets.UTF_8), "an explicit cuda request must not fall back silently");
    }

    @Test
    void cpuNeverProbesCuda() {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (Backend backend = DeviceSelector.create(DeviceSelector.parse("cpu"), 1, new PrintStream(log))) {
            assertInstanceOf(CpuBackend.class, backend);
        }
        assertEquals("", log.toString(StandardCharsets.UTF_8));
    }
}

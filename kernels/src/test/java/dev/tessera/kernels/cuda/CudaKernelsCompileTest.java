package dev.tessera.kernels.cuda;

import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The build's fatbin: where nvcc exists (the condition the pom's cuda profiles use) it must hold SASS for sm_80 and
 * sm_90 and PTX for compute_90; without nvcc it must be absent and the backend must say why.
 */
class CudaKernelsCompileTest {
    private static final Path NVCC = Path.of("/usr/local/cuda/bin/nvcc");

    static boolean nvccPresent() {
        String env = System.getenv("TESSERA_NVCC");
        return Files.isExecutable(NVCC) || (env != null && Files.isExecutable(Path.of(env)));
    }

    @Test
    void fatbinHoldsSassForSm80AndSm90AndPtxForCompute90() throws Exception {
        byte[] image;
        try (InputStream in = CudaDevice.class.getResourceAsStream(CudaDevice.FATBIN_RESOURCE)) {
            if (!nvccPresent()) {
                assertNull(in, "a fatbin without nvcc?");
                CudaException e = assertThrows(CudaException.class, CudaDevice::fatbin);
                assertEquals(CudaDevice.NO_KERNELS, e.getMessage());
                return;
            }
            assertNotNull(in, "nvcc is present but dev/tessera/kernels/cuda/" + CudaDevice.FATBIN_RESOURCE + " was not built");
            image = in.readAllBytes();
        }
        assertEquals(Set.of("elf sm_80", "elf sm_90", "ptx sm_90"), entries(image));
    }

    @Test
    void entryParserRejectsWhatIsNotAFatbin() {
        assertThrows(IllegalArgumentException.class, () -> entries(new byte[64]));
    }

    /**
     * The entries of a fatbin container, as "elf sm_NN" / "ptx sm_NN". Layout (CUDA's fatbinary.h): a 16-byte header
     * {u32 magic 0xBA55ED50, u16 version, u16 headerSize, u64 payloadSize}, then entries {u16 kind (1 PTX, 2 ELF),
     * u16 version, u32 headerSize, u64 payloadSize, ..., u32 arch at +28}, each followed by its payload.
     */
    static Set<String> entries(byte[] image) {
        ByteBuffer b = ByteBuffer.wrap(image).order(ByteOrder.LITTLE_ENDIAN);
        if (image.length < 16 || b.getInt(0) != 0xBA55ED50) throw new IllegalArgumentException("not a fatbin: no magic 0xBA55ED50");
        int headerSize = Short.toUnsignedInt(b.getShort(6));
        long end = headerSize + b.getLong(8);
        Set<String> out = new TreeSet<>();
        long off = headerSize;
        while (off < end) {
            int o = Math.toIntExact(off);
            int kind = Short.toUnsignedInt(b.getShort(o));
            long entryHeader = Integer.toUnsignedLong(b.getInt(o + 4));
            long payload = b.getLong(o + 8);
            int arch = b.getInt(o + 28);
            out.add((kind == 1 ? "ptx" : kind == 2 ? "elf" : "kind" + kind) + " sm_" + arch);
            off += entryHeader + payload;
        }
        assertTrue(off == end, "fatbin entries overrun the container");
        return out;
    }
}

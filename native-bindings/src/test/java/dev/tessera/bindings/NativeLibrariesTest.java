package dev.tessera.bindings;

import dev.tessera.bindings.cuda.cuda_h;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NativeLibrariesTest {

    /** Without libcuda.so.1 every call says so in one line, the second call included (no NoClassDefFoundError). */
    @Test
    void callingCudaWithoutTheDriverGivesTheClearMessage() {
        Assumptions.assumeFalse(cuda_h.libraryAvailable(), "libcuda.so.1 is installed here (" + cuda_h.libraryStatus() + "); the missing-driver path cannot be seen");
        for (int attempt = 0; attempt < 2; attempt++) {
            LibraryUnavailableException e = assertThrows(LibraryUnavailableException.class, () -> cuda_h.cuInit(0));
            assertTrue(e.getMessage().startsWith("CUDA unavailable: libcuda.so.1 not found (looked in: "), e.getMessage());
            assertTrue(e.getMessage().contains("/usr/local/cuda/lib64"), e.getMessage());
            assertTrue(e.getMessage().endsWith(")"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), e.getMessage());
            assertNull(e.getCause());
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(cuda_h.C_INT);
            LibraryUnavailableException e = assertThrows(LibraryUnavailableException.class, () -> cuda_h.cuDeviceGetCount(count));
            assertTrue(e.getMessage().startsWith("CUDA unavailable: libcuda.so.1 not found"), e.getMessage());
        }
    }

    @Test
    void messageListsEveryFolderSearched() {
        LibraryUnavailableException e = assertThrows(LibraryUnavailableException.class,
                () -> NativeLibraries.load("Test", new String[] {"libtessera-none.so.7", "libtessera-none.so.6"}, null));
        String m = e.getMessage();
        assertTrue(m.startsWith("Test unavailable: libtessera-none.so.7 or libtessera-none.so.6 not found (looked in: "), m);
        for (String dir : NativeLibraries.SYSTEM_DIRS) assertTrue(m.contains(dir), dir + " missing from: " + m);
        assertTrue(m.endsWith("the dynamic linker's default paths)"), m);
    }

    @Test
    void missingSymbolThrowsOnEveryCallWithItsName() {
        // libc is always there; a made-up symbol in it gives the "has no symbol" message.
        NativeLibrary libc = NativeLibrary.open("libc", "libc.so.6");
        assertTrue(libc.available(), libc.describe());
        var handle = libc.downcall("tessera_no_such_function", java.lang.foreign.FunctionDescriptor.of(cuda_h.C_INT, cuda_h.C_INT));
        for (int attempt = 0; attempt < 2; attempt++) {
            LibraryUnavailableException e = assertThrows(LibraryUnavailableException.class, () -> {
                int ignored = (int) handle.invokeExact(1);
            });
            assertTrue(e.getMessage().matches("libc unavailable: \\S*libc\\.so\\.6 has no symbol tessera_no_such_function \\(the installed driver or library is older than these bindings\\)"), e.getMessage());
        }
        var getpid = libc.downcall("getpid", java.lang.foreign.FunctionDescriptor.of(cuda_h.C_INT));
        assertDoesNotThrowPid(getpid);
    }

    private static void assertDoesNotThrowPid(java.lang.invoke.MethodHandle getpid) {
        try {
            assertEquals(ProcessHandle.current().pid(), (long) (int) getpid.invokeExact());
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    @Test
    void loadsFromAnExplicitFolderList() {
        assertNull(NativeLibraries.loadFrom(List.of(Path.of("/nonexistent")), new String[] {"libc.so.6"}, null));
        NativeLibraries.Found found = NativeLibraries.loadFrom(List.of(Path.of("/nonexistent"), Path.of("/usr/lib/x86_64-linux-gnu"), Path.of("/lib64")),
                new String[] {"libc.so.6"}, null);
        Assumptions.assumeTrue(found != null, "libc.so.6 is not in /usr/lib/x86_64-linux-gnu or /lib64 on this machine");
        assertTrue(found.lookup().find("getpid").isPresent());
    }

    @Test
    void globExpandsStars() {
        List<Path> found = NativeLibraries.glob("/usr/lib/jvm/*/bin/java");
        assertFalse(found.isEmpty());
        for (Path p : found) assertTrue(p.toString().matches("/usr/lib/jvm/[^/]+/bin/java"), p.toString());
        assertNotNull(NativeLibraries.sitePackages());
    }
}

package dev.tessera.kernels.cpu;

import org.lwjgl.PointerBuffer;
import org.lwjgl.system.MemoryStack;

import static org.lwjgl.util.hwloc.HWLoc.*;

/**
 * Physical core count from hwloc (through LWJGL), because SMT siblings share the vector units a matmul saturates.
 * Falls back to the JVM's processor count when hwloc cannot load.
 */
public final class CpuTopology {
    private static volatile int cached;

    private CpuTopology() {}

    public static int physicalCores() {
        int n = cached;
        if (n == 0) cached = n = detect();
        return n;
    }

    private static int detect() {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer topology = stack.mallocPointer(1);
            if (hwloc_topology_init(topology) != 0) return fallback();
            long t = topology.get(0);
            try {
                if (hwloc_topology_load(t) != 0) return fallback();
                int cores = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_CORE);
                return cores > 0 ? Math.min(cores, Runtime.getRuntime().availableProcessors()) : fallback();
            } finally {
                hwloc_topology_destroy(t);
            }
        } catch (Throwable e) {
            return fallback();
        }
    }

    private static int fallback() {
        return Runtime.getRuntime().availableProcessors();
    }
}

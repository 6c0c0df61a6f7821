package dev.tessera.scheduler.placement;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Which device holds each expert of each MoE layer: {@code device[l][e]} in 0..numDevices-1. Devices are numbered node
 * by node ({@code numDevices / numNodes} per node), so device d is on node d / devicesPerNode. Every layer puts
 * exactly numExperts / numDevices experts on each device.
 */
public record Placement(String method, int numDevices, int numNodes, int[][] device, double solveSeconds) {

    public Placement {
        if (numDevices < 1 || numNodes < 1 || numDevices % numNodes != 0)
            throw new IllegalArgumentException(numDevices + " devices cannot be split evenly over " + numNodes + " nodes");
        for (int l = 0; l < device.length; l++) {
            int[] load = new int[numDevices];
            for (int d : device[l]) {
                if (d < 0 || d >= numDevices) throw new IllegalArgumentException("layer " + l + ": device " + d + " outside 0.." + (numDevices - 1));
                load[d]++;
            }
            for (int d = 0; d < numDevices; d++)
                if (load[d] != device[l].length / numDevices)
                    throw new IllegalStateException("layer " + l + ": device " + d + " holds " + load[d] + " experts, expected " + device[l].length / numDevices);
        }
    }

    public int numLayers() { return device.length; }
    public int numExperts() { return device[0].length; }

    public int node(int d) {
        return d / (numDevices / numNodes);
    }

    /** Experts 0..E/D-1 on device 0, the next E/D on device 1, and so on, every layer alike. */
    public static Placement contiguous(int numLayers, int numExperts, int numDevices, int numNodes) {
        check(numExperts, numDevices);
        int[][] d = new int[numLayers][numExperts];
        for (int l = 0; l < numLayers; l++) for (int e = 0; e < numExperts; e++) d[l][e] = e / (numExperts / numDevices);
        return new Placement("contiguous", numDevices, numNodes, d, 0);
    }

    /** Expert e on device e mod D, every layer alike. */
    public static Placement roundRobin(int numLayers, int numExperts, int numDevices, int numNodes) {
        check(numExperts, numDevices);
        int[][] d = new int[numLayers][numExperts];
        for (int l = 0; l < numLayers; l++) for (int e = 0; e < numExperts; e++) d[l][e] = e % numDevices;
        return new Placement("round-robin", numDevices, numNodes, d, 0);
    }

    static void check(int numExperts, int numDevices) {
        if (numDevices < 1 || numExperts % numDevices != 0)
            throw new IllegalArgumentException(numExperts + " experts per layer cannot be split evenly over " + numDevices + " devices");
    }

    /** The placement as JSON: what {@code tessera place --out} writes. */
    public String toJson(String model) {
        StringBuilder b = new StringBuilder();
        b.append("{\n  \"format\": \"tessera-expert-placement\",\n  \"version\": 1,\n");
        b.append("  \"model\": \"").append(model.replace("\\", "\\\\").replace("\"", "\\\"")).append("\",\n");
        b.append(String.format(Locale.ROOT, "  \"num_layers\": %d,\n  \"num_experts\": %d,\n  \"num_devices\": %d,\n  \"num_nodes\": %d,\n",
                numLayers(), numExperts(), numDevices, numNodes));
        b.append("  \"method\": \"").append(method).append("\",\n");
        b.append(String.format(Locale.ROOT, "  \"solve_seconds\": %.3f,\n", solveSeconds));
        b.append("  \"device_of_expert\": [\n");
        for (int l = 0; l < numLayers(); l++) {
            b.append("    [");
            for (int e = 0; e < numExperts(); e++) b.append(e == 0 ? "" : ", ").append(device[l][e]);
            b.append(l + 1 < numLayers() ? "],\n" : "]\n");
        }
        return b.append("  ]\n}\n").toString();
    }

    public void write(Path out, String model) {
        try {
            Files.writeString(out, toJson(model), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
    }
}

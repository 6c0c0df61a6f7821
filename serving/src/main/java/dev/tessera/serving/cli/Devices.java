package dev.tessera.serving.cli;

import dev.tessera.kernels.Backend;
import dev.tessera.kernels.DeviceSelector;

/** The {@code --device} option shared by every command that computes. */
final class Devices {
    private Devices() {}

    /** Backend for --device (default auto); a malformed value is a usage error, a missing device a failure. */
    static Backend backend(CliArgs args, int threads) {
        DeviceSelector.Device device;
        try {
            device = DeviceSelector.parse(args.get("device", "auto"));
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        return DeviceSelector.create(device, threads, System.err);
    }
}

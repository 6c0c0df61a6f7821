package dev.tessera.serving.cli;

import java.util.List;

/** One {@code tessera} subcommand. */
public interface Command {
    String name();

    /** One line for the top-level help. */
    String summary();

    /** Full usage text printed by {@code --help}. */
    String usage();

    /** Runs the command; returns the exit code (0 ok, 1 failure). Throws UsageException for bad usage. */
    int run(List<String> args) throws Exception;
}

package dev.tessera.serving.cli;

import dev.tessera.models.gguf.GgufException;
import dev.tessera.serving.ServingContext;
import dev.tessera.serving.http.ApiKeyFilter;
import dev.tessera.serving.http.ChatCompletionsService;
import dev.tessera.serving.http.CompletionsService;
import dev.tessera.serving.http.HealthService;
import dev.tessera.serving.http.ModelsService;
import dev.tessera.serving.http.RequestLog;
import dev.tessera.serving.http.Responses;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.HttpRouting;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;

/** Entry point of {@code ./tessera}: dispatches to subcommands. Results go to stdout, logs to stderr. */
public final class Main {
    static final List<Command> COMMANDS = List.of(
            new ServeCommand(), new GenerateCommand(), new TokenizeCommand(), new SynthCommand(), new BenchCommand(),
            new LinkEmuCommand(), new AllReduceBenchCommand(),
            new WorkerCommand(), new AttentionWorkerCommand(), new ExpertWorkerCommand(),
            new ShardCommand(),
            new TraceRoutingCommand(), new PlaceCommand());

    public static void main(String[] argv) {
        System.exit(run(argv));
    }

    public static int run(String[] argv) {
        if (argv.length == 0 || argv[0].equals("--help") || argv[0].equals("-h") || argv[0].equals("help")) {
            System.out.println(topLevelHelp());
            return argv.length == 0 ? 2 : 0;
        }
        Command command = COMMANDS.stream().filter(c -> c.name().equals(argv[0])).findFirst().orElse(null);
        if (command == null) {
            System.err.println("tessera: unknown command '" + argv[0] + "'\n" + topLevelHelp());
            return 2;
        }
        List<String> args = Arrays.asList(argv).subList(1, argv.length);
        if (args.contains("--help") || args.contains("-h")) {
            System.out.println(command.usage());
            return 0;
        }
        try {
            return command.run(args);
        } catch (CliArgs.UsageException e) {
            System.err.println("tessera " + command.name() + ": " + e.getMessage());
            System.err.println("run 'tessera " + command.name() + " --help' for usage");
            return 2;
        } catch (GgufException e) {
            System.err.println("tessera " + command.name() + ": " + e.getMessage());
            return 1;
        } catch (Exception e) {
            // Our own exceptions carry a finished one-line message; anything else keeps its type for diagnosis.
            boolean ours = e.getClass().getName().startsWith("dev.tessera.") && e.getMessage() != null;
            System.err.println("tessera " + command.name() + ": " + (ours ? e.getMessage() : e));
            return 1;
        }
    }

    /**
     * The HTTP API: request log and API key filters, then one service per endpoint family; unknown paths get a 404
     * with an OpenAI error body. Tests build their servers from this too.
     */
    public static void routing(HttpRouting.Builder routing, ServingContext context, PrintStream log) {
        routing.addFilter(new RequestLog(context.metrics(), log))
                .addFilter(new ApiKeyFilter(context.config().apiKey()))
                .register(new HealthService(context))
                .register("/v1", new ModelsService(context), new CompletionsService(context), new ChatCompletionsService(context))
                .any(Responses::notFound)
                .error(Throwable.class, Responses::unexpected);
    }

    /** Starts a server on host:port (0 = any free port) with {@link #routing}; the model may be loaded later. */
    public static WebServer server(String host, int port, ServingContext context, PrintStream log) {
        return WebServer.builder()
                .host(host)
                .port(port)
                // Streamed tokens are small writes: without TCP_NODELAY, Nagle's algorithm holds each one back until
                // the client's delayed ACK (~40 ms per chunk on a kept-alive connection).
                .connectionOptions(o -> o.tcpNoDelay(true))
                .routing(r -> routing(r, context, log))
                .build()
                .start();
    }

    static String topLevelHelp() {
        StringBuilder sb = new StringBuilder("usage: tessera <command> [options]\n\ncommands:\n");
        for (Command c : COMMANDS) sb.append(String.format("  %-10s %s%n", c.name(), c.summary()));
        sb.append("\nrun 'tessera <command> --help' for a command's options");
        return sb.toString();
    }
}

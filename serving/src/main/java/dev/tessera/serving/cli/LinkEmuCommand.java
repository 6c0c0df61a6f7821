package dev.tessera.serving.cli;

import dev.tessera.kernels.collective.LinkEmulator;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/** {@code tessera linkemu}: a TCP proxy that adds a one-way delay and a rate limit, to emulate an edge network link. */
public final class LinkEmuCommand implements Command {
    @Override
    public String name() {
        return "linkemu";
    }

    @Override
    public String summary() {
        return "TCP proxy adding a one-way delay and a rate limit (edge link emulation)";
    }

    @Override
    public String usage() {
        return """
                usage: tessera linkemu --listen HOST:PORT --to HOST:PORT [--delay 1ms] [--rate 300mbit]

                Accepts connections on --listen and forwards each to --to. Every byte, in each direction, is released
                --delay after it was read (units ns, us, ms, s) and no faster than --rate (bit, kbit, mbit, gbit;
                decimal as in tc; 0 = unlimited). Port 0 picks a free port. Prints the listening address on stdout,
                then runs until killed.""";
    }

    @Override
    public int run(List<String> args) throws Exception {
        CliArgs a = new CliArgs(args, Set.of("listen", "to", "delay", "rate"), Set.of());
        InetSocketAddress listen = parseAddress("listen", a.require("listen"));
        InetSocketAddress to = parseAddress("to", a.require("to"));
        Duration delay;
        long rate;
        try {
            delay = LinkEmulator.parseDelay(a.get("delay", "1ms"));
            rate = LinkEmulator.parseRate(a.get("rate", "300mbit"));
        } catch (IllegalArgumentException e) {
            throw new CliArgs.UsageException(e.getMessage());
        }
        try (LinkEmulator link = new LinkEmulator(listen, to, delay, rate)) {
            System.out.println(link.address().getHostString() + ":" + link.address().getPort());
            System.out.flush();
            System.err.printf("linkemu: %s:%d -> %s:%d, delay %s, rate %s%n", link.address().getHostString(),
                    link.address().getPort(), to.getHostString(), to.getPort(), a.get("delay", "1ms"), a.get("rate", "300mbit"));
            Thread.currentThread().join();
        }
        return 0;
    }

    /** HOST:PORT, with the port after the last colon. */
    static InetSocketAddress parseAddress(String flag, String value) {
        int colon = value.lastIndexOf(':');
        if (colon <= 0) throw new CliArgs.UsageException("--" + flag + " expects HOST:PORT, got '" + value + "'");
        try {
            int port = Integer.parseInt(value.substring(colon + 1));
            if (port < 0 || port > 65535) throw new NumberFormatException();
            return new InetSocketAddress(value.substring(0, colon), port);
        } catch (NumberFormatException e) {
            throw new CliArgs.UsageException("--" + flag + " expects HOST:PORT with a port 0..65535, got '" + value + "'");
        }
    }
}

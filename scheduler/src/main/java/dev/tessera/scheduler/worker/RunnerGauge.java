package dev.tessera.scheduler.worker;

import java.util.function.DoubleSupplier;

/** A live value a runner exposes on /metrics: its help text and how to read it (from a scrape thread). */
public record RunnerGauge(String description, DoubleSupplier value) {}

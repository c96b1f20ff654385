"""Development tooling: the platform launcher, the check runner and the benchmarks."""

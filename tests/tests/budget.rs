//! The loader's memory budget (docs/design.md §9.1): the release build (size-budget's, static
//! musl, `loader` profile) installs a 64 MiB file through a real mig-api, measured by GNU time.

use size_budget::RSS_BUDGET_KIB;

#[test]
fn a_64_mib_install_stays_within_the_memory_budget() {
    let built = size_budget::musl::loader().expect("the release mig-loader builds");
    let m = e2e::measure::install_once(&built.stripped, 64 * 1024 * 1024)
        .expect("a measured 64 MiB install");
    println!(
        "peak RSS installing a 64 MiB file through mig-api: {} KiB (budget {RSS_BUDGET_KIB} KiB; CPU {:.2} s user, {:.2} s system)",
        m.peak_kib, m.user_s, m.system_s
    );
    assert!(m.peak_kib > 0, "GNU time reported no RSS");
    assert!(
        m.peak_kib <= RSS_BUDGET_KIB,
        "peak RSS {} KiB exceeds the budget of {RSS_BUDGET_KIB} KiB",
        m.peak_kib
    );
}

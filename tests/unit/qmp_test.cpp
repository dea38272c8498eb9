// What a boot timeout's hint says about the vCPUs, from HMP's `info registers -a`.
#include "sbx/vm/qmp.hpp"

#include <gtest/gtest.h>

namespace {

// The shape QEMU 7.2 prints (trimmed: the segment, control and vector registers follow).
constexpr const char* k_two_cpus =
    "\r\nCPU#0\r\n"
    "RAX=ffffffffc029f970 RBX=000000007fff0000 RCX=ff462210bd8d0d10 RDX=ff46221082c4a0c0\r\n"
    "RIP=ffffffff81e3a2b1 RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1\r\n"
    "ES =0000 0000000000000000 00000000 00000000\r\n"
    "YMM00=0000000000000000 0000000000000000 2f2f2f2f2f2f2f2f 2f2f2f2f2f2f2f2f\r\n"
    "\r\nCPU#1\r\n"
    "RIP=ffffffffa7d3c2eb RFL=00000206 [-----P-] CPL=0 II=1 A20=1 SMM=0 HLT=0\r\n";

TEST(SummarizeVcpus, NamesEachVcpusInstructionPointerAndWhetherItHalted) {
    EXPECT_EQ(sbx::vm::summarize_vcpus(k_two_cpus),
              "vCPU 0 at ffffffff81e3a2b1 (halted), vCPU 1 at ffffffffa7d3c2eb");
}

TEST(SummarizeVcpus, SaysNothingForTextWithoutRegisters) {
    EXPECT_EQ(sbx::vm::summarize_vcpus(""), "");
    EXPECT_EQ(sbx::vm::summarize_vcpus("unknown command: 'info registers'\r\n"), "");
    EXPECT_EQ(sbx::vm::summarize_vcpus("RIP=ffffffff81e3a2b1 HLT=1\n"), "");  // no CPU#N before it
}

TEST(SummarizeVcpus, ACutOffDumpStillGivesWhatItHas) {
    EXPECT_EQ(sbx::vm::summarize_vcpus("CPU#3\nRIP=0000000000fff0"), "vCPU 3 at 0000000000fff0");
    EXPECT_EQ(sbx::vm::summarize_vcpus("CPU#"), "");
}

}  // namespace

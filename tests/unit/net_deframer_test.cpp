#include "net_frames.hpp"
#include "sbx/net/deframer.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace sbx::net;
using sbx::test::Frame;

namespace {

Frame pattern(std::size_t n, std::uint8_t seed) {
    Frame f(n);
    for (std::size_t i = 0; i < n; ++i) {
        f[i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
    }
    return f;
}

std::vector<Frame> drain(Deframer& d) {
    std::vector<Frame> out;
    for (;;) {
        auto n = d.next();
        if (n.status != Deframer::Status::frame) {
            EXPECT_EQ(n.status, Deframer::Status::need_more);
            return out;
        }
        out.emplace_back(n.frame.begin(), n.frame.end());
    }
}

}  // namespace

TEST(NetDeframer, ManyFramesInOneRead) {
    Frame a = pattern(60, 1), b = pattern(1514, 2), c = pattern(14, 3);
    Frame s = sbx::test::stream({a, b, c});
    Deframer d;
    ASSERT_EQ(d.feed(s), s.size());
    auto got = drain(d);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], a);
    EXPECT_EQ(got[1], b);
    EXPECT_EQ(got[2], c);
    EXPECT_EQ(d.buffered(), 0u);
}

TEST(NetDeframer, PartialFrameCarriedAcrossReads) {
    Frame a = pattern(100, 4), b = pattern(3000, 5);
    Frame s = sbx::test::stream({a, b});
    Deframer d;
    std::vector<Frame> got;
    // One byte per read: headers and frames split at every possible point.
    for (std::byte byte : s) {
        ASSERT_EQ(d.feed(std::span(&byte, 1)), 1u);
        for (auto& f : drain(d)) {
            got.push_back(std::move(f));
        }
    }
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0], a);
    EXPECT_EQ(got[1], b);
}

TEST(NetDeframer, CarryAcrossBufferEndWithWriteSpace) {
    // Fill the buffer with reads through write_space/commit so the stream wraps many times.
    std::vector<Frame> frames;
    Frame s;
    for (int i = 0; i < 40; ++i) {
        frames.push_back(pattern(9000 + static_cast<std::size_t>(i) * 777, static_cast<std::uint8_t>(i)));
    }
    for (const auto& f : frames) {
        Frame one = sbx::test::stream({f});
        s.insert(s.end(), one.begin(), one.end());
    }
    Deframer d(64 * 1024);  // raised to the minimum: 2 * (max frame + 4)
    std::size_t off = 0;
    std::vector<Frame> got;
    while (off < s.size()) {
        auto space = d.write_space();
        ASSERT_FALSE(space.empty());
        std::size_t n = std::min<std::size_t>({space.size(), s.size() - off, 50'000});
        std::memcpy(space.data(), s.data() + off, n);
        d.commit(n);
        off += n;
        for (auto& f : drain(d)) {
            got.push_back(std::move(f));
        }
    }
    EXPECT_EQ(got, frames);
}

TEST(NetDeframer, LargestFrameAccepted) {
    Frame big = pattern(Deframer::k_max_frame, 9);
    Frame s = sbx::test::stream({big});
    Deframer d;
    ASSERT_EQ(d.feed(s), s.size());
    auto n = d.next();
    ASSERT_EQ(n.status, Deframer::Status::frame);
    EXPECT_EQ(n.frame.size(), Deframer::k_max_frame);
}

TEST(NetDeframer, OversizeIsAStickyError) {
    Frame s;
    sbx::test::put32(s, static_cast<std::uint32_t>(Deframer::k_max_frame + 1));
    s.resize(s.size() + 100);
    Deframer d;
    d.feed(s);
    EXPECT_EQ(d.next().status, Deframer::Status::error);
    EXPECT_TRUE(d.failed());
    EXPECT_EQ(d.next().status, Deframer::Status::error);
    EXPECT_TRUE(d.write_space().empty());
}

TEST(NetDeframer, ZeroLengthIsAnError) {
    Frame good = pattern(60, 1);
    Frame s = sbx::test::stream({good});
    sbx::test::put32(s, 0);
    Deframer d;
    d.feed(s);
    auto first = d.next();
    ASSERT_EQ(first.status, Deframer::Status::frame);
    EXPECT_EQ(d.next().status, Deframer::Status::error);
}

TEST(NetDeframer, HugeLengthHeaderErrorsBeforeTheBody) {
    // 0xffffffff must not make the deframer wait for 4 GiB.
    Frame s;
    sbx::test::put32(s, 0xffffffffu);
    Deframer d;
    d.feed(s);
    EXPECT_EQ(d.next().status, Deframer::Status::error);
}

TEST(NetDeframer, StreamPrefix) {
    auto p = stream_prefix(0x1234);
    EXPECT_EQ(std::to_integer<int>(p[0]), 0);
    EXPECT_EQ(std::to_integer<int>(p[1]), 0);
    EXPECT_EQ(std::to_integer<int>(p[2]), 0x12);
    EXPECT_EQ(std::to_integer<int>(p[3]), 0x34);
}

// The transient wheel's lists and its pool of entry blocks.
#include "store/transient.hh"

#include <algorithm>
#include <cstring>

namespace cachet::store {

TransientWheel::TransientWheel(const Arena& arena, const Geometry& g, bool fresh, uint32_t now)
    : hdr_(arena.at<WheelHeader>(g.off_wheel)),
      lists_(reinterpret_cast<WheelList*>(arena.at<char>(g.off_wheel) + sizeof(WheelHeader))),
      blocks_(arena.at<WheelBlock>(g.off_wheel_blocks)) {
  if (!fresh) return;
  hdr_->n_blocks = g.wheel_blocks;
  reset(now);
}

void TransientWheel::reset(uint32_t now) {
  std::memset(static_cast<void*>(lists_), 0, sizeof(WheelList) * kWheelSeconds * kWheelLanes);
  hdr_->pool_lock.word.store(0);
  hdr_->pool_free = 0;
  hdr_->pool_used = 0;
  hdr_->blocks_in_use.store(0);
  hdr_->entries.store(0);
  hdr_->reaped_until.store(now, std::memory_order_release);
}

void TransientWheel::break_stale_locks() {
  hdr_->pool_lock.word.store(0);
  for (uint32_t i = 0; i < kWheelSeconds * kWheelLanes; ++i) lists_[i].lock.word.store(0);
}

uint32_t TransientWheel::block_alloc() {
  hdr_->pool_lock.lock();
  uint32_t b = 0;
  if (hdr_->pool_free != 0) {
    b = hdr_->pool_free;
    hdr_->pool_free = block(b).next;
  } else if (hdr_->pool_used < hdr_->n_blocks) {
    b = ++hdr_->pool_used;
  }
  hdr_->pool_lock.unlock();
  if (b == 0) return 0;
  block(b).next = 0;
  block(b).n = 0;
  hdr_->blocks_in_use.fetch_add(1, std::memory_order_relaxed);
  return b;
}

void TransientWheel::block_free_chain(uint32_t head, uint32_t n) {
  if (head == 0) return;
  uint32_t tail = head;
  while (block(tail).next != 0) tail = block(tail).next;
  hdr_->pool_lock.lock();
  block(tail).next = hdr_->pool_free;
  hdr_->pool_free = head;
  hdr_->pool_lock.unlock();
  hdr_->blocks_in_use.fetch_sub(n, std::memory_order_relaxed);
}

bool TransientWheel::add(uint64_t off, uint32_t exptime, unsigned lane) {
  WheelList& l = list(exptime, lane);
  uint32_t spare = 0;  // a block allocated outside the lock when the tail was full
  for (;;) {
    l.lock.lock();
    // Checked under the list's lock: take() marks a second reaped before it locks the lists.
    const uint32_t reaped = hdr_->reaped_until.load(std::memory_order_acquire);
    if (exptime <= reaped || exptime - reaped >= kWheelSeconds) {
      l.lock.unlock();
      if (spare) block_free_chain(spare, 1);
      return false;
    }
    if (l.tail != 0 && block(l.tail).n < WheelBlock::kEntries) {
      WheelBlock& b = block(l.tail);
      b.off[b.n++] = off;
      ++l.count;
      l.lock.unlock();
      if (spare) block_free_chain(spare, 1);
      hdr_->entries.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (spare) {
      if (l.tail != 0) block(l.tail).next = spare; else l.head = spare;
      l.tail = spare;
      WheelBlock& b = block(spare);
      b.off[b.n++] = off;
      ++l.count;
      l.lock.unlock();
      hdr_->entries.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    l.lock.unlock();
    spare = block_alloc();
    if (spare == 0) return false;
  }
}

void TransientWheel::take(uint32_t second, common::FunctionRef<void(uint64_t)> fn) {
  hdr_->reaped_until.store(second, std::memory_order_release);
  for (unsigned lane = 0; lane < kWheelLanes; ++lane) {
    WheelList& l = list(second, lane);
    l.lock.lock();
    const uint32_t head = l.head;
    const uint32_t count = l.count;
    l.head = l.tail = l.count = 0;
    l.lock.unlock();
    if (head == 0) continue;
    uint32_t n_blocks = 0;
    uint32_t b = head;
    for (; b != 0 && b <= hdr_->pool_used && n_blocks < hdr_->pool_used; b = block(b).next) {
      ++n_blocks;
      const WheelBlock& blk = block(b);
      for (uint32_t i = 0; i < std::min(blk.n, WheelBlock::kEntries); ++i) fn(blk.off[i]);
    }
    if (b != 0) {  // a damaged arena's list: what it holds is left to the sweeps
      hdr_->entries.fetch_sub(count, std::memory_order_relaxed);
      continue;
    }
    hdr_->entries.fetch_sub(count, std::memory_order_relaxed);
    block_free_chain(head, n_blocks);
  }
}

}  // namespace cachet::store

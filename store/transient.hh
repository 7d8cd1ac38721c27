// The transient item cache's wheel (the paper's 6.3): a circular buffer of kWheelSeconds lists,
// one per second of expiry, of the offsets of items stored with a short TTL. Writers append an
// offset; once a second has passed, the reaper takes its lists whole and frees what is still
// linked and expired. The wheel lives in the arena (layout.hh) and survives an upgrade.
#pragma once

#include <cstdint>

#include "common/function_ref.hh"
#include "store/arena.hh"
#include "store/layout.hh"

namespace cachet::store {

class TransientWheel {
 public:
  // Binds to the arena's wheel; a fresh arena's wheel starts empty with `now` reaped.
  TransientWheel(const Arena& arena, const Geometry& g, bool fresh, uint32_t now);

  // Adds the item at `off`, expiring at `exptime`, to that second's list on `lane` (any
  // number; writers on different lanes never contend). False when the second is already
  // reaped or beyond the wheel, or no block is left: the item is then left to the sweeps.
  bool add(uint64_t off, uint32_t exptime, unsigned lane);

  // Takes every list of `second` out of the wheel, marks the second reaped and calls
  // fn(offset) for each entry, with no lock held. Seconds must be taken in order.
  void take(uint32_t second, common::FunctionRef<void(uint64_t)> fn);

  // The last second taken (items expiring at or before it have been seen by the reaper).
  uint32_t reaped_until() const { return hdr_->reaped_until.load(std::memory_order_acquire); }
  // Entries in the lists now, and the bytes of their blocks.
  uint64_t entries() const { return hdr_->entries.load(std::memory_order_relaxed); }
  uint64_t bytes() const {
    return uint64_t{hdr_->blocks_in_use.load(std::memory_order_relaxed)} * kWheelBlockBytes;
  }

  // After a crash (nothing else uses the arena): forgets every list, all blocks free, and
  // starts again from `now`. The crash scan puts the transient items back.
  void reset(uint32_t now);
  // Resets the locks of a process that died.
  void break_stale_locks();

 private:
  WheelList& list(uint32_t second, unsigned lane) {
    return lists_[(second % kWheelSeconds) * kWheelLanes + lane % kWheelLanes];
  }
  WheelBlock& block(uint32_t one_based) { return blocks_[one_based - 1]; }
  uint32_t block_alloc();
  void block_free_chain(uint32_t head, uint32_t n);

  WheelHeader* hdr_;
  WheelList* lists_;
  WheelBlock* blocks_;
};

}  // namespace cachet::store

// ByteBuf's slow paths: growing (compacting the front first) and releasing memory.
#include "common/byte_buf.hh"

#include <cstdlib>
#include <new>
#include <utility>

namespace cachet::common {

ByteBuf::~ByteBuf() { std::free(buf_); }

ByteBuf::ByteBuf(ByteBuf&& o) noexcept
    : buf_(std::exchange(o.buf_, nullptr)),
      head_(std::exchange(o.head_, 0)),
      tail_(std::exchange(o.tail_, 0)),
      cap_(std::exchange(o.cap_, 0)) {}

ByteBuf& ByteBuf::operator=(ByteBuf&& o) noexcept {
  if (this != &o) {
    std::free(buf_);
    buf_ = std::exchange(o.buf_, nullptr);
    head_ = std::exchange(o.head_, 0);
    tail_ = std::exchange(o.tail_, 0);
    cap_ = std::exchange(o.cap_, 0);
  }
  return *this;
}

void ByteBuf::grow(size_t need) {
  size_t used = size();
  // Compacting is enough when the consumed front leaves room for the request.
  if (head_ > 0 && cap_ - used >= need && head_ >= used) {
    std::memmove(buf_, buf_ + head_, used);
    head_ = 0;
    tail_ = used;
    return;
  }
  size_t cap = cap_ ? cap_ : 256;
  while (cap - used < need) cap *= 2;
  char* nb = static_cast<char*>(std::malloc(cap));
  if (!nb) throw std::bad_alloc();
  if (used) std::memcpy(nb, buf_ + head_, used);
  std::free(buf_);
  buf_ = nb;
  cap_ = cap;
  head_ = 0;
  tail_ = used;
}

void ByteBuf::shrink_if_empty(size_t keep) {
  if (!empty() || cap_ <= keep) return;
  std::free(buf_);
  buf_ = nullptr;
  cap_ = head_ = tail_ = 0;
}

}  // namespace cachet::common

// A growable byte buffer with a movable front, used for connection input and output and for
// building replies. Not thread safe; one owner at a time.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>

namespace cachet::common {

class ByteBuf {
 public:
  ByteBuf() = default;
  explicit ByteBuf(size_t capacity) { reserve(capacity); }
  ~ByteBuf();
  ByteBuf(const ByteBuf&) = delete;
  ByteBuf& operator=(const ByteBuf&) = delete;
  ByteBuf(ByteBuf&& o) noexcept;
  ByteBuf& operator=(ByteBuf&& o) noexcept;

  char* data() { return buf_ + head_; }
  const char* data() const { return buf_ + head_; }
  size_t size() const { return tail_ - head_; }
  bool empty() const { return tail_ == head_; }
  std::string_view view() const { return {buf_ + head_, tail_ - head_}; }
  size_t capacity() const { return cap_; }

  // Ensures room for n more bytes at the end and returns where they go; commit() them after.
  char* prepare(size_t n) {
    if (cap_ - tail_ < n) grow(n);
    return buf_ + tail_;
  }
  void commit(size_t n) { tail_ += n; }

  void append(const void* p, size_t n) {
    if (n == 0) return;  // memcpy with a null buffer is undefined even for 0 bytes
    std::memcpy(prepare(n), p, n);
    tail_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  void push_back(char c) {
    *prepare(1) = c;
    ++tail_;
  }

  // Keeps the first n bytes (n <= size()).
  void truncate(size_t n) { tail_ = head_ + n; }
  // Drops the first n bytes (n <= size()).
  void consume(size_t n) {
    head_ += n;
    if (head_ == tail_) head_ = tail_ = 0;
  }
  void clear() { head_ = tail_ = 0; }
  void reserve(size_t n) {
    if (cap_ - head_ < n) grow(n - size());
  }
  // Returns memory to the system when the buffer is empty and larger than keep bytes.
  void shrink_if_empty(size_t keep);

 private:
  void grow(size_t need);

  char* buf_ = nullptr;
  size_t head_ = 0;
  size_t tail_ = 0;
  size_t cap_ = 0;
};

}  // namespace cachet::common

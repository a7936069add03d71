/*
 * Fault-injecting PKCS#11 shim for the native tests: forwards every call to the real module named by
 * OCSP_SHIM_TARGET and, on command, fails or stalls calls. Commands and counters live in a small file
 * named by OCSP_SHIM_CONTROL, mapped shared, so the test process changes behaviour with plain file writes.
 *
 * control file layout (little-endian):
 *   0  int32 mode            0 pass through, 2 device removed, 3 C_Sign hangs while set
 *   4  int32 close_all       set to 1: the next call closes every real session (sessions invalidated)
 *   8  int64 signs_ok        successful C_Sign calls (the HSM's own count of signatures)
 *   16 int64 sign_calls      every C_Sign call
 *   24 int64 login_calls     every C_Login call
 *   32 int32 lock_after      > 0: emulate a real HSM's PIN retry counter: after this many wrong user PINs in a
 *                            row, every user C_Login answers CKR_PIN_LOCKED (SoftHSM2 never locks)
 *   36 int32 wrong_pins      wrong user PINs in a row so far (a correct one resets it, as on real tokens)
 *   40 int32 hang            bit mask of calls that hang (bounded at 30 s) while set: 1 C_Sign, 2 C_SignInit,
 *                            4 C_OpenSession, 8 C_Login, 16 C_FindObjectsInit and C_FindObjects, 32 C_GetSessionInfo
 *   48 int64 hung_calls      calls that were held by `hang` (or mode 3)
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CK_PTR *
#define CK_DECLARE_FUNCTION(returnType, name) returnType name
#define CK_DECLARE_FUNCTION_POINTER(returnType, name) returnType(*name)
#define CK_CALLBACK_FUNCTION(returnType, name) returnType(*name)
#ifndef NULL_PTR
#define NULL_PTR 0
#endif
#include "pkcs11.h"

struct control {
  volatile int32_t mode;
  volatile int32_t close_all;
  volatile int64_t signs_ok;
  volatile int64_t sign_calls;
  volatile int64_t login_calls;
  volatile int32_t lock_after;
  volatile int32_t wrong_pins;
  volatile int32_t hang;
  volatile int32_t pad;
  volatile int64_t hung_calls;
};


static CK_FUNCTION_LIST shim;
static CK_FUNCTION_LIST_PTR real;
static struct control *ctl;
static struct control fallback;
static pthread_once_t once = PTHREAD_ONCE_INIT;

enum { MODE_PASS = 0, MODE_REMOVED = 2, MODE_HANG = 3 };

enum { HANG_SIGN = 1, HANG_SIGN_INIT = 2, HANG_OPEN = 4, HANG_LOGIN = 8, HANG_FIND = 16, HANG_SESSION_INFO = 32 };

/* A stalled device: hold the call while its bit is set (bounded at 30 s). */
static void hold(int bit) {
  if (!(ctl->hang & bit)) return;
  __atomic_add_fetch(&ctl->hung_calls, 1, __ATOMIC_RELAXED);
  for (int waited = 0; (ctl->hang & bit) && waited < 30000; waited += 10) usleep(10000);
}

static void close_all_real_sessions(void) {
  if (!__atomic_exchange_n(&ctl->close_all, 0, __ATOMIC_SEQ_CST)) return;
  CK_SLOT_ID slots[64];
  CK_ULONG n = 64;
  if (real->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK) return;
  for (CK_ULONG i = 0; i < n; i++) real->C_CloseAllSessions(slots[i]);
}

#define GUARD()                                            \
  do {                                                     \
    close_all_real_sessions();                             \
    if (ctl->mode == MODE_REMOVED) return CKR_DEVICE_REMOVED; \
  } while (0)

static CK_RV shim_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) {
  close_all_real_sessions();
  if (ctl->mode == MODE_REMOVED && present) {
    *count = 0;
    return CKR_OK;
  }
  return real->C_GetSlotList(present, list, count);
}
static CK_RV shim_GetTokenInfo(CK_SLOT_ID s, CK_TOKEN_INFO_PTR i) { GUARD(); return real->C_GetTokenInfo(s, i); }
static CK_RV shim_OpenSession(CK_SLOT_ID s, CK_FLAGS f, CK_VOID_PTR a, CK_NOTIFY n, CK_SESSION_HANDLE_PTR h) {
  hold(HANG_OPEN);
  GUARD();
  return real->C_OpenSession(s, f, a, n, h);
}
static CK_RV shim_GetSessionInfo(CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR i) {
  hold(HANG_SESSION_INFO);
  GUARD();
  return real->C_GetSessionInfo(h, i);
}
static CK_RV shim_Login(CK_SESSION_HANDLE h, CK_USER_TYPE u, CK_UTF8CHAR_PTR p, CK_ULONG l) {
  __atomic_add_fetch(&ctl->login_calls, 1, __ATOMIC_RELAXED);
  hold(HANG_LOGIN);
  GUARD();
  int counting = u == CKU_USER && ctl->lock_after > 0;
  if (counting && ctl->wrong_pins >= ctl->lock_after) return CKR_PIN_LOCKED;
  CK_RV rv = real->C_Login(h, u, p, l);
  if (counting && rv == CKR_PIN_INCORRECT) __atomic_add_fetch(&ctl->wrong_pins, 1, __ATOMIC_RELAXED);
  else if (counting && (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)) ctl->wrong_pins = 0;
  return rv;
}
static CK_RV shim_FindObjectsInit(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n) {
  hold(HANG_FIND);
  GUARD();
  return real->C_FindObjectsInit(h, t, n);
}
static CK_RV shim_FindObjects(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR o, CK_ULONG max, CK_ULONG_PTR n) {
  hold(HANG_FIND);
  GUARD();
  return real->C_FindObjects(h, o, max, n);
}
static CK_RV shim_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k) {
  hold(HANG_SIGN_INIT);
  GUARD();
  return real->C_SignInit(h, m, k);
}

static CK_RV shim_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR d, CK_ULONG dl, CK_BYTE_PTR s, CK_ULONG_PTR sl) {
  __atomic_add_fetch(&ctl->sign_calls, 1, __ATOMIC_RELAXED);
  /* A stalled device: hold the call (bounded at 30 s) while the mode says so. */
  if (ctl->mode == MODE_HANG) __atomic_add_fetch(&ctl->hung_calls, 1, __ATOMIC_RELAXED);
  for (int waited = 0; ctl->mode == MODE_HANG && waited < 30000; waited += 10) usleep(10000);
  hold(HANG_SIGN);
  GUARD();
  CK_RV rv = real->C_Sign(h, d, dl, s, sl);
  if (rv == CKR_OK && s != NULL) __atomic_add_fetch(&ctl->signs_ok, 1, __ATOMIC_RELAXED);
  return rv;
}

static void init(void) {
  const char *target = getenv("OCSP_SHIM_TARGET");
  void *lib = dlopen(target ? target : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
  if (!lib) abort();
  CK_RV (*get)(CK_FUNCTION_LIST_PTR_PTR) = (CK_RV(*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(lib, "C_GetFunctionList");
  if (!get || get(&real) != CKR_OK) abort();
  memcpy(&shim, real, sizeof shim);
  shim.C_GetSlotList = shim_GetSlotList;
  shim.C_GetTokenInfo = shim_GetTokenInfo;
  shim.C_OpenSession = shim_OpenSession;
  shim.C_GetSessionInfo = shim_GetSessionInfo;
  shim.C_Login = shim_Login;
  shim.C_FindObjectsInit = shim_FindObjectsInit;
  shim.C_FindObjects = shim_FindObjects;
  shim.C_SignInit = shim_SignInit;
  shim.C_Sign = shim_Sign;
  ctl = &fallback;
  const char *path = getenv("OCSP_SHIM_CONTROL");
  if (path) {
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd >= 0 && ftruncate(fd, 4096) == 0) {
      void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (m != MAP_FAILED) ctl = (struct control *)m;
    }
    if (fd >= 0) close(fd);
  }
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
  pthread_once(&once, init);
  *list = &shim;
  return CKR_OK;
}

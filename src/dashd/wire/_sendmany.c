/* dashd.wire._sendmany: send one buffer to many sockets in one C loop.
 *
 * The broadcast's last step (dashd.wire.broadcast): after Python has chosen
 * the sockets that can take a frame at once (open, nothing buffered, not
 * paused), this writes it to each with send(MSG_DONTWAIT | MSG_NOSIGNAL),
 * the GIL released, and returns only the exceptions: a list of
 * (index, result) for every socket that did not take the whole buffer,
 * where result >= 0 is how many bytes it took (a partial write) and
 * result < 0 is -errno (EAGAIN: nothing taken; anything else: the
 * connection is failing). The caller hands the rest to Twisted, in order.
 *
 * Optional: built from source by the machine's compiler during
 * `pip install` (setup.py, optional=True); without it the same loop runs
 * in Python. Both are tested (tests/test_fanout.py).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>

static PyObject *
sendmany(PyObject *self, PyObject *args)
{
    PyObject *fds_arg;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "Oy*:sendmany", &fds_arg, &data))
        return NULL;
    PyObject *fds = PySequence_Fast(fds_arg, "sendmany: fds must be a sequence of ints");
    if (fds == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fds);
    int *fd = PyMem_Malloc(sizeof(int) * (n > 0 ? n : 1));
    Py_ssize_t *result = PyMem_Malloc(sizeof(Py_ssize_t) * (n > 0 ? n : 1));
    if (fd == NULL || result == NULL) {
        PyMem_Free(fd);
        PyMem_Free(result);
        Py_DECREF(fds);
        PyBuffer_Release(&data);
        return PyErr_NoMemory();
    }
    PyObject **items = PySequence_Fast_ITEMS(fds);
    for (Py_ssize_t i = 0; i < n; i++) {
        long value = PyLong_AsLong(items[i]);
        if (value == -1 && PyErr_Occurred()) {
            PyMem_Free(fd);
            PyMem_Free(result);
            Py_DECREF(fds);
            PyBuffer_Release(&data);
            return NULL;
        }
        if (value < 0 || value > 0x7fffffff) {
            PyErr_SetString(PyExc_ValueError, "sendmany: a file descriptor is out of range");
            PyMem_Free(fd);
            PyMem_Free(result);
            Py_DECREF(fds);
            PyBuffer_Release(&data);
            return NULL;
        }
        fd[i] = (int)value;
    }
    Py_DECREF(fds);

    const char *buf = data.buf;
    size_t len = (size_t)data.len;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        ssize_t sent;
        do {
            sent = send(fd[i], buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (sent < 0 && errno == EINTR);
        result[i] = sent < 0 ? -(Py_ssize_t)errno : (Py_ssize_t)sent;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    PyMem_Free(fd);

    PyObject *short_writes = PyList_New(0);
    if (short_writes == NULL) {
        PyMem_Free(result);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (result[i] == (Py_ssize_t)len)
            continue;
        PyObject *entry = Py_BuildValue("(nn)", i, result[i]);
        if (entry == NULL || PyList_Append(short_writes, entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(short_writes);
            PyMem_Free(result);
            return NULL;
        }
        Py_DECREF(entry);
    }
    PyMem_Free(result);
    return short_writes;
}

static PyMethodDef methods[] = {
    {"sendmany", sendmany, METH_VARARGS,
     "sendmany(fds, data) -> [(index, result), ...]: send data to every fd (non-blocking); "
     "list the ones that did not take all of it (result: bytes taken, or -errno)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "dashd.wire._sendmany",
    "One buffer to many sockets in one C loop (see dashd.wire.broadcast).", -1, methods,
};

PyMODINIT_FUNC
PyInit__sendmany(void)
{
    return PyModule_Create(&module);
}

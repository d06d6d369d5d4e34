// Vite build and dev-server configuration for the dashd dashboard.
//
// `npm run build` writes dist/ with content-hashed asset names under base "/",
// which dashd serves itself (hashed assets long-cached, index.html not cached).
// `npm run dev` proxies the API and the three WebSocket endpoints to a running
// dashd (default http://127.0.0.1:8080, override with DASHD_URL).
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

const DASHD_URL = process.env.DASHD_URL || 'http://127.0.0.1:8080';

const wsProxy = { target: DASHD_URL, ws: true, changeOrigin: false };

export default defineConfig({
  base: '/',
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    // Keep vendor code (React, Chart.js) in its own long-lived hashed chunk so
    // an app-only change does not invalidate it in browser caches.
    rolldownOptions: {
      output: {
        assetFileNames: 'assets/[name]-[hash][extname]',
        chunkFileNames: 'assets/[name]-[hash].js',
        entryFileNames: 'assets/[name]-[hash].js',
        codeSplitting: {
          groups: [{ name: 'vendor', test: /node_modules/ }],
        },
      },
    },
  },
  server: {
    port: 5173,
    proxy: {
      '/api': { target: DASHD_URL, changeOrigin: false },
      '/dashboard': wsProxy,
      '/metrics': wsProxy,
      '/notifications': wsProxy,
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{js,jsx,ts,tsx}'],
    restoreMocks: true,
    // Component tests that walk a whole panel (render, click, await several
    // fetches) take over 5 s when the machine is busy; no test asserts time.
    testTimeout: 30000,
  },
});
